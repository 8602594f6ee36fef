#include "raw_sqlite.hpp"

#include <sqlite3.h>

#include <stdexcept>

#include "digest.hpp"

namespace raw {

namespace {

struct DbClose {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

class SqliteStore final : public Store {
 public:
  SqliteStore(const std::string& path, bool create) : path_(path) {
    sqlite3* raw = nullptr;
    const int flags = create ? SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE : SQLITE_OPEN_READONLY;
    const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    db_.reset(raw);
    if (rc != SQLITE_OK) fail("open");
    if (create) exec("CREATE TABLE images(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, pixels BLOB NOT NULL)");
  }

  // One transaction, SQLite's default durability (rollback journal, synchronous=FULL: fsync at commit).
  void write(const Images& images) override {
    exec("BEGIN");
    const StmtPtr stmt = prepare("INSERT INTO images VALUES (?1, ?2, ?3)");
    for (std::size_t i = 0; i < images.n(); ++i) {
      sqlite3_bind_int64(stmt.get(), 1, images.ids[i]);
      sqlite3_bind_int64(stmt.get(), 2, images.labels[i]);
      sqlite3_bind_blob(stmt.get(), 3, images.image(i).data(), static_cast<int>(images.bytes()), SQLITE_STATIC);
      if (sqlite3_step(stmt.get()) != SQLITE_DONE) fail("INSERT");
      sqlite3_reset(stmt.get());
    }
    exec("COMMIT");
  }

  Digest read_all() override {
    const StmtPtr stmt = prepare("SELECT id, label, pixels FROM images");
    return digest(stmt.get());
  }

  Digest read_one(std::int64_t id) override {
    const StmtPtr stmt = prepare("SELECT id, label, pixels FROM images WHERE id = ?1");
    sqlite3_bind_int64(stmt.get(), 1, id);
    return digest(stmt.get());
  }

  // One statement per batch: `id IN (the batch)`, the list handed over as JSON as a data loader would.
  Digest read_batch(std::span<const std::int64_t> ids) override {
    if (!batch_) batch_ = prepare("SELECT id, label, pixels FROM images WHERE id IN (SELECT value FROM json_each(?1))");
    std::string list = "[";
    for (const auto id : ids) {
      if (list.size() > 1) list += ',';
      list += std::to_string(id);
    }
    list += "]";
    sqlite3_bind_text(batch_.get(), 1, list.c_str(), static_cast<int>(list.size()), SQLITE_TRANSIENT);
    const Digest d = digest(batch_.get());
    sqlite3_reset(batch_.get());
    return d;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("raw baseline: sqlite " + what + " on " + path_ + ": " + sqlite3_errmsg(db_.get()));
  }
  void exec(const char* sql) {
    if (sqlite3_exec(db_.get(), sql, nullptr, nullptr, nullptr) != SQLITE_OK) fail(sql);
  }
  StmtPtr prepare(const char* sql) {
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db_.get(), sql, -1, &raw, nullptr) != SQLITE_OK) fail(sql);
    return StmtPtr(raw);
  }
  Digest digest(sqlite3_stmt* stmt) {
    Digest d;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, 2));
      const auto bytes = static_cast<std::size_t>(sqlite3_column_bytes(stmt, 2));
      d.sum += imgstore::row_digest(sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1), {p, bytes});
      ++d.count;
    }
    if (rc != SQLITE_DONE) fail("read");
    return d;
  }

  const std::string path_;
  std::unique_ptr<sqlite3, DbClose> db_;
  StmtPtr batch_;
};

}  // namespace

std::unique_ptr<Store> make_sqlite_store(const std::string& path, bool create) { return std::make_unique<SqliteStore>(path, create); }

}  // namespace raw
