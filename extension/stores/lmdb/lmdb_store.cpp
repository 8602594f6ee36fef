// LMDB backend.
//
//   CREATE VIRTUAL TABLE train USING lmdb(path='train.lmdb', shape='32x32x3');
//
// On disk: lmdb_format.hpp (readable without our code).
//
// Transactions: one LMDB write transaction per SQLite transaction; SQLite savepoints (statement atomicity
// inside BEGIN ... COMMIT) are LMDB nested transactions, which is why MDB_WRITEMAP is not used (LMDB refuses
// nested transactions with it). Reads outside a write transaction use their own read-only snapshot
// (MDB_NOTLS, so several cursors in one thread each have one), recycled with mdb_txn_reset/renew.
//
// The environment, its map (never set by the user: it grows by itself) and its registry: lmdb_env.hpp.
//
// Checksums (format 2): every read that serves an image's pixels checks its checksum first (verify=0 turns
// that off), once per row a cursor stands on; a label alone is served unchecked. A damaged image is
// SQLITE_CORRUPT naming the table, the id and the data file, never its bytes. Format 1 values have none.
//
// A compaction (lmdb_compact.cpp) may swap the store's data file for a compacted copy while a table is open:
// before each statement (a cursor, count, max_id, a transaction's begin) the table asks whether its path names
// another data file now and, outside a transaction of its own, moves to that file's environment. Cursors keep
// the environment they started on, so a scan under way finishes on its snapshot of the old file.

#include "lmdb_store.hpp"

#include <lmdb.h>

#include <algorithm>
#include <deque>
#include <cstring>
#include <exception>
#include <utility>

#include "args.hpp"
#include "checksum.hpp"
#include "lmdb_env.hpp"
#include "lmdb_format.hpp"
#include "thread_pool.hpp"

namespace imgstore {

namespace {

using namespace lmdb;  // the environment layer: Env, TxnPtr, CursorPtr, fail

using lmdb_format::decode_key;
using lmdb_format::decode_label;
using lmdb_format::decode_value;
using lmdb_format::encode_key;
using lmdb_format::encode_value;
using lmdb_format::value_bytes;

std::span<const std::uint8_t> bytes_of(const MDB_val& value) {
  return {static_cast<const std::uint8_t*>(value.mv_data), value.mv_size};
}

// The checksum a damaged image's value should have had, or nothing for a sound image (and for a format-1 value,
// which has none).
std::optional<std::uint64_t> damaged(std::int64_t id, const lmdb_format::Value& value) {
  if (!value.checksum) return std::nullopt;
  const std::uint64_t computed = lmdb_format::expected_checksum(id, value);
  if (computed == *value.checksum) return std::nullopt;
  return computed;
}


class LmdbStore;

// What a value of a store of `shape` must be, for errors.
std::string expected_value(lmdb_format::Version v, const Shape& shape) {
  if (v == lmdb_format::Version::v1) return std::to_string(value_bytes(v, shape.bytes())) + " (8-byte label + pixels)";
  if (shape.any) {
    return "a 32-byte header (label, checksum, a sound height, width, channels) followed by height*width*channels "
           "bytes of pixels";
  }
  return std::to_string(value_bytes(v, shape.bytes())) + " (8-byte label, 8-byte checksum, pixels)";
}

// Rows from either this table's write transaction (so a transaction sees its own writes) or, outside one, a
// read-only snapshot of its own. The ids-or-range logic is IdWalk's, as in the other backends; what LMDB adds
// is that a scan of the snapshot keeps one cursor, so the walk's "first id >= the last one + 1" is MDB_NEXT
// from where the cursor stands, not a search from the root.
class LmdbCursor final : public Cursor {
 public:
  LmdbCursor(LmdbStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids);

  bool at_end() const override { return at_end_; }
  void next() override;
  std::int64_t id() const override { return walk_.id(); }
  std::int64_t label() override { return decode_label(static_cast<const unsigned char*>(walk_.value().mv_data)); }
  std::span<const std::uint8_t> pixels() override;
  std::span<const std::uint8_t> pixels_unchecked(PixelCheck& check) override;
  std::optional<Shape> row_shape() override;
  // Two read-only snapshots of one environment with one transaction id see the same pages; each cursor has
  // its own read transaction (MDB_NOTLS: usable from any thread, one at a time) and touches no shared state.
  bool same_snapshot(const Cursor& other) const override {
    const auto* o = dynamic_cast<const LmdbCursor*>(&other);
    return o != nullptr && !in_write_txn_ && !o->in_write_txn_ && env_ == o->env_ && reader_.get() != nullptr &&
           o->reader_.get() != nullptr && mdb_txn_id(reader_.get()) == mdb_txn_id(o->reader_.get());
  }

 private:
  MDB_txn* txn() const;
  std::optional<MDB_val> find(std::int64_t id);
  std::optional<MDB_val> get(std::int64_t id);
  std::optional<std::pair<std::int64_t, MDB_val>> first_from(std::int64_t from);
  int search(std::int64_t from, MDB_val& key, MDB_val& value);
  void check_value(std::int64_t id, const MDB_val& value) const {
    if (any_ ? !decode_value(env_->version(), bytes_of(value), store_shape()) : value.mv_size != value_bytes_) {
      throw_bad_value(id, value);
    }
  }
  const Shape& store_shape() const;
  [[noreturn]] void throw_bad_value(std::int64_t id, const MDB_val& value) const;

  LmdbStore& store_;
  const std::shared_ptr<Env> env_;  // the one this cursor started on, even if the table moves to a compacted file
  const bool in_write_txn_;
  const bool verify_;
  Env::Snapshot reader_;  // before cursor_, which must close first; given back even if the constructor throws
  CursorPtr cursor_;  // only for a scan of the snapshot: a write transaction's cursors die with its savepoints
  bool on_row_ = false;  // cursor_ stands on the row with id at_
  std::int64_t at_ = -1;
  const std::size_t value_bytes_;  // the header and the pixels (a one-shape store)
  const bool any_;  // a store of shape 'any': each value's size follows the shape it records
  const std::int64_t hi_;  // the range's end: a row past it ends the walk unread, so it is not checked
  IdWalk<MDB_val> walk_;
  // A read-only lookup of many ids finds the next few ahead of the one it serves and asks the CPU for their
  // values at once, so their loads from memory overlap (a random batch waits on memory, not on work).
  std::deque<std::optional<MDB_val>> ahead_;  // the values of walk_.ids_ahead()[0, ahead_.size())
  bool verified_ = false;  // the current row's checksum was checked
  bool at_end_ = false;
};

class LmdbStore final : public Store {
 public:
  LmdbStore(std::string table, std::string path, std::shared_ptr<Env> env, std::chrono::milliseconds timeout,
            bool verify)
      : table_(std::move(table)), path_(std::move(path)), env_(std::move(env)), timeout_(timeout), verify_(verify) {}

  ~LmdbStore() override {
    if (!levels_.empty() && env_->here()) rollback();  // a forked child leaves the parent's transaction alone
  }

  const Shape& shape() const override { return env_->shape(); }
  const std::string& table() const { return table_; }
  bool verify() const { return verify_; }
  // The environment of the store's current data file (moving to it first, outside a write transaction, when a
  // compaction swapped it).
  const std::shared_ptr<Env>& current_env();
  MDB_txn* write_txn() const { return levels_.empty() ? nullptr : levels_.back().txn; }

  std::uint64_t count() override;
  std::optional<std::int64_t> max_id() override;
  std::unique_ptr<Cursor> scan(IdRange range) override {
    return std::make_unique<LmdbCursor>(*this, range, std::vector<std::int64_t>{}, false);
  }
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override {
    return std::make_unique<LmdbCursor>(*this, IdRange{}, std::move(ids), true);
  }

  void put(const Image& image, bool replace) override;
  bool set_label(std::int64_t id, std::int64_t label) override;
  bool erase(std::int64_t id) override;
  std::vector<std::string> check(bool full) override;
  Compacted compact() override;

  void begin() override;
  void sync() override;
  bool keeps_transaction_in_memory() const override { return true; }  // its dirty pages, up to 512 MiB
  void rollback() override;
  void savepoint(int level) override;
  void release(int level) override;
  void rollback_to(int level) override;

  // Runs f(txn, env) on the write transaction if one is open, else on a read snapshot of the current data file.
  template <typename F>
  void with_txn(F&& f);

 private:
  struct Level {
    int level;
    MDB_txn* txn;  // owned by base_ (aborting a parent aborts its children)
  };

  MDB_txn* require_write(const char* what);
  void check_write(int rc, const char* call);
  void finish() noexcept;

  const std::string table_;
  const std::string path_;  // as given, to reopen it after a compaction
  std::shared_ptr<Env> env_;
  const std::chrono::milliseconds timeout_;  // the `timeout` argument
  const bool verify_;  // the `verify` argument
  TxnPtr base_;
  Env::Live base_live_;  // counts base_ while it lives
  std::vector<Level> levels_;
  std::optional<std::int64_t> last_id_;  // largest id in the write transaction, for MDB_APPEND
  std::vector<std::uint8_t> scratch_;
  std::size_t txn_bytes_ = 0;  // written in this transaction, to size the map after MDB_MAP_FULL
};

const std::shared_ptr<Env>& LmdbStore::current_env() {
  // A forked child reads through an environment of its own (LMDB forbids using the parent's after fork(): a
  // child's read renews the parent's reader slot, and the parent's next read fails with MDB_BAD_RSLOT); the
  // registry opens one per process. The parent's is dropped here unclosed (EnvClose).
  if (levels_.empty() && (!env_->here() || env_->replaced())) {
    env_ = open_env(table_, path_, env_->shape(), OpenMode::must_exist);
  }
  return env_;
}

template <typename F>
void LmdbStore::with_txn(F&& f) {
  if (MDB_txn* txn = write_txn()) {
    f(txn, *env_);
    return;
  }
  const auto env = current_env();  // held while its snapshot is
  const Env::Snapshot reader = env->take_reader(table_);
  f(reader.get(), *env);
}

std::uint64_t LmdbStore::count() {
  MDB_stat stat{};
  with_txn([&](MDB_txn* txn, const Env& env) { mdb_stat(txn, env.images(), &stat); });
  return stat.ms_entries;
}

std::optional<std::int64_t> LmdbStore::max_id() {
  std::optional<std::int64_t> result;
  with_txn([&](MDB_txn* txn, const Env& env) {
    MDB_cursor* raw = nullptr;
    if (mdb_cursor_open(txn, env.images(), &raw) != MDB_SUCCESS) return;
    const CursorPtr cursor(raw);
    MDB_val key{};
    MDB_val value{};
    if (mdb_cursor_get(cursor.get(), &key, &value, MDB_LAST) == MDB_SUCCESS && key.mv_size == 8) {
      result = decode_key(static_cast<const unsigned char*>(key.mv_data));
    }
  });
  return result;
}

void LmdbStore::put(const Image& image, bool replace) {
  MDB_txn* txn = require_write("INSERT");
  unsigned char key_bytes[8];
  encode_key(image.id, key_bytes);
  MDB_val key{8, key_bytes};
  MDB_val value{value_bytes(env_->version(), image.pixels.size(), shape().any), nullptr};
  if (!last_id_) last_id_ = max_id().value_or(-1);
  // Ascending ids (a bulk load) take LMDB's append path: no search, pages filled completely.
  const bool append = image.id > *last_id_;
  const unsigned flags = MDB_RESERVE | (replace ? 0u : unsigned{MDB_NOOVERWRITE}) | (append ? MDB_APPEND : 0u);
  const int rc = mdb_put(txn, env_->images(), &key, &value, flags);
  if (rc == MDB_KEYEXIST) {
    throw Error("table " + table_ + ": id " + std::to_string(image.id) +
                    " already exists; expected a unique id (INSERT OR REPLACE overwrites)",
                ErrorKind::constraint);
  }
  check_write(rc, "mdb_put");
  encode_value(env_->version(), shape(), image.id, image.label, image.shape, image.pixels,
               {static_cast<std::uint8_t*>(value.mv_data), value.mv_size});
  last_id_ = std::max(*last_id_, image.id);
  // Values over half a page go to overflow pages of their own: count whole pages.
  txn_bytes_ += round_up(value.mv_size + 16, value.mv_size > 2000 ? 4096 : 1);
}

// A new label changes only the checksum's label term (checksum.hpp, relabelled()): no pixel read, and an image
// that was damaged stays damaged, so an UPDATE never makes its checksum vouch for bytes it did not check.
bool LmdbStore::set_label(std::int64_t id, std::int64_t label) {
  MDB_txn* txn = require_write("UPDATE");
  unsigned char key_bytes[8];
  encode_key(id, key_bytes);
  MDB_val key{8, key_bytes};
  MDB_val old{};
  const int rc = mdb_get(txn, env_->images(), &key, &old);
  if (rc == MDB_NOTFOUND) return false;
  check_write(rc, "mdb_get");
  const auto value = decode_value(env_->version(), bytes_of(old), shape());
  if (!value) {
    throw Error("table " + table_ + ": the value of id " + std::to_string(id) + " in '" + env_->data_path() + "' is " +
                    std::to_string(old.mv_size) + " bytes; expected " + expected_value(env_->version(), shape()),
                ErrorKind::corrupt);
  }
  // Built aside first: the old value's page may be the one the put rewrites.
  scratch_.assign(static_cast<const std::uint8_t*>(old.mv_data), static_cast<const std::uint8_t*>(old.mv_data) + old.mv_size);
  lmdb_format::relabel_value(env_->version(), id, label, scratch_);
  MDB_val updated{scratch_.size(), scratch_.data()};
  check_write(mdb_put(txn, env_->images(), &key, &updated, 0), "mdb_put");
  return true;
}

bool LmdbStore::erase(std::int64_t id) {
  MDB_txn* txn = require_write("DELETE");
  unsigned char key_bytes[8];
  encode_key(id, key_bytes);
  MDB_val key{8, key_bytes};
  const int rc = mdb_del(txn, env_->images(), &key, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  check_write(rc, "mdb_del");
  return true;
}

// With `full`, every image's checksum is checked (whatever `verify` says): one line per damaged image.
std::vector<std::string> LmdbStore::check(bool full) {
  std::vector<std::string> problems;
  with_txn([&](MDB_txn* txn, const Env& env) {
    const std::string expected = expected_value(env.version(), shape());
    MDB_cursor* raw = nullptr;
    if (const int rc = mdb_cursor_open(txn, env.images(), &raw); rc != MDB_SUCCESS) {
      problems.push_back(std::string("cannot read the images database: ") + mdb_strerror(rc));
      return;
    }
    const CursorPtr cursor(raw);
    MDB_val key{};
    MDB_val value{};
    int rc;
    while ((rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) == MDB_SUCCESS) {
      if (key.mv_size != 8) {
        problems.push_back("a key of " + std::to_string(key.mv_size) + " bytes; expected 8 (a big-endian id)");
        continue;
      }
      const std::int64_t id = decode_key(static_cast<const unsigned char*>(key.mv_data));
      if (id < 0) problems.push_back("id " + std::to_string(id) + " is negative");
      const auto decoded = decode_value(env.version(), bytes_of(value), shape());
      if (!decoded) {
        problems.push_back("id " + std::to_string(id) + ": value of " + std::to_string(value.mv_size) + " bytes; expected " +
                           expected);
      } else if (full) {
        // Hashing reads every byte, which makes LMDB fault in every overflow page: I/O errors show here, in
        // format 1 too (no checksum to compare with: the hash is only read).
        if (const auto computed = damaged(id, *decoded)) {
          problems.push_back("image " + std::to_string(id) + " in '" + env.data_path() + "' " +
                             checksum_mismatch(*decoded->checksum, *computed));
        }
        if (!decoded->checksum) (void)image_checksum(id, decoded->label, decoded->pixels);
      }
    }
    if (rc != MDB_NOTFOUND) problems.push_back(std::string("the scan stopped: ") + mdb_strerror(rc));
  });
  return problems;
}

// compact_lmdb_store on this table's store. A single-file store (format 1) is compacted only with no environment
// of this process on it: this table lets go of its own meanwhile and opens the compacted file after.
Compacted LmdbStore::compact() {
  if (!levels_.empty()) throw Error("table " + table_ + ": cannot compact inside a transaction; COMMIT first");
  std::string quoted;
  for (const char c : path_) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  const std::vector<std::string> args{"path='" + quoted + "'", "timeout=" + std::to_string(timeout_.count())};
  if (env_->version() == lmdb_format::Version::v2) return compact_lmdb_store(table_, args);
  const Shape shape = env_->shape();
  env_.reset();
  std::optional<Compacted> done;
  std::exception_ptr failed;
  try {
    done = compact_lmdb_store(table_, args);
  } catch (...) {
    failed = std::current_exception();
  }
  env_ = open_env(table_, path_, shape, OpenMode::must_exist);
  if (failed) std::rethrow_exception(failed);
  return *done;
}

void LmdbStore::begin() {
  if (!levels_.empty()) return;
  // On the data file the path names now: a compaction that swapped it moves this table to the new one.
  env_ = claim_current_writer(table_, path_, env_->shape(), env_, timeout_);
  try {
    Env::Write write = env_->begin_write(table_);
    base_live_ = std::move(write.live);
    base_ = std::move(write.txn);
  } catch (...) {
    env_->release_writer();
    throw;
  }
  levels_.push_back({-1, base_.get()});
  last_id_.reset();
  txn_bytes_ = 0;
}

void LmdbStore::sync() {
  if (levels_.empty()) return;
  levels_.clear();
  const int rc = mdb_txn_commit(base_.release());  // frees the handle on failure too
  finish();
  if (rc != MDB_SUCCESS) {
    if (rc == MDB_MAP_FULL) env_->map_was_full(txn_bytes_);
    fail(table_, env_->path(), "mdb_txn_commit", rc);
  }
}

void LmdbStore::rollback() {
  if (levels_.empty()) return;
  levels_.clear();
  base_.reset();  // aborts the base and every nested transaction
  finish();
}

void LmdbStore::savepoint(int level) {
  if (levels_.empty()) return;
  MDB_txn* child = nullptr;
  const int rc = mdb_txn_begin(env_->get(), levels_.back().txn, 0, &child);
  if (rc != MDB_SUCCESS) fail(table_, env_->path(), "mdb_txn_begin (nested)", rc);
  levels_.push_back({level, child});
}

void LmdbStore::release(int level) {
  while (levels_.size() > 1 && levels_.back().level >= level) {
    MDB_txn* child = levels_.back().txn;
    levels_.pop_back();
    const int rc = mdb_txn_commit(child);
    if (rc != MDB_SUCCESS) fail(table_, env_->path(), "mdb_txn_commit (nested)", rc);
  }
}

void LmdbStore::rollback_to(int level) {
  if (levels_.empty()) return;
  while (levels_.size() > 1 && levels_.back().level > level) {
    mdb_txn_abort(levels_.back().txn);
    levels_.pop_back();
  }
  last_id_.reset();
  const bool marked = levels_.size() > 1 && levels_.back().level == level;
  if (levels_.size() > 1) {
    // Back to the nearest savepoint: replace its transaction with a fresh child of its parent.
    const int kept = levels_.back().level;
    mdb_txn_abort(levels_.back().txn);
    levels_.pop_back();
    savepoint(kept);
  } else {
    // No savepoint at all: `level` was opened before this table's first write (SQLite tells a table only of
    // the savepoints opened after it joins), so everything it wrote goes: a fresh base transaction.
    levels_.clear();
    base_.reset();
    base_live_ = Env::Live();
    try {
      Env::Write write = env_->begin_write(table_);  // still this process's one writer: the claim is kept
      base_live_ = std::move(write.live);
      base_ = std::move(write.txn);
    } catch (...) {
      finish();  // the transaction is gone: give the writer slot back
      throw;
    }
    levels_.push_back({-1, base_.get()});
  }
  // The savepoint stays open after ROLLBACK TO (as in SQL).
  if (!marked) savepoint(level);
}

MDB_txn* LmdbStore::require_write(const char* what) {
  if (levels_.empty()) {
    throw Error("table " + table_ + ": " + what + " outside a transaction (SQLite did not call xBegin)");
  }
  return levels_.back().txn;
}

void LmdbStore::check_write(int rc, const char* call) {
  if (rc == MDB_SUCCESS) return;
  if (rc == MDB_MAP_FULL) {
    env_->map_was_full(txn_bytes_);
    throw Error("table " + table_ + ": the LMDB map of '" + env_->path() + "' (" +
                    std::to_string(env_->map_size() >> 20) +
                    " MiB) filled up in this transaction; it was rolled back and the map grows before the "
                    "next one: run it again (in smaller transactions if it keeps failing)",
                ErrorKind::full);
  }
  fail(table_, env_->path(), call, rc);
}

void LmdbStore::finish() noexcept {
  base_live_ = Env::Live();
  env_->release_writer();
  last_id_.reset();
}

LmdbCursor::LmdbCursor(LmdbStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids)
    : store_(store), env_(store.current_env()), in_write_txn_(store.write_txn() != nullptr), verify_(store.verify()),
      reader_(in_write_txn_ ? Env::Snapshot() : env_->take_reader(store.table())),
      value_bytes_(value_bytes(env_->version(), store.shape().bytes())), any_(store.shape().any), hi_(range.hi),
      walk_(range, std::move(ids), by_ids) {
  if (!in_write_txn_ && !by_ids) {
    MDB_cursor* raw = nullptr;
    const int rc = mdb_cursor_open(reader_.get(), env_->images(), &raw);
    if (rc != MDB_SUCCESS) fail(store_.table(), env_->path(), "mdb_cursor_open", rc);
    cursor_.reset(raw);
  }
  next();
}

// The row's value was checked to be the right size as the walk reached it (check_value).
std::span<const std::uint8_t> LmdbCursor::pixels() {
  PixelCheck check;
  const std::span<const std::uint8_t> px = pixels_unchecked(check);
  if (const auto computed = failed_check(check, id(), px)) {
    throw damaged_image(store_.table(), id(), env_->data_path(), check.expected, *computed);
  }
  verified_ = true;
  return px;
}

std::span<const std::uint8_t> LmdbCursor::pixels_unchecked(PixelCheck& check) {
  const auto value = decode_value(env_->version(), bytes_of(walk_.value()), store_.shape());
  check = {};
  if (verify_ && !verified_ && value->checksum) {
    check = {PixelCheck::Kind::image, lmdb_format::pixel_checksum(*value), value->label};
  }
  return value->pixels;
}

std::optional<Shape> LmdbCursor::row_shape() {
  if (!any_) return std::nullopt;
  return decode_value(env_->version(), bytes_of(walk_.value()), store_.shape())->shape;
}

MDB_txn* LmdbCursor::txn() const {
  if (!in_write_txn_) return reader_.get();
  MDB_txn* txn = store_.write_txn();
  if (txn == nullptr) {
    throw Error("table " + store_.table() + ": the transaction ended while a query was still reading it");
  }
  return txn;
}

const Shape& LmdbCursor::store_shape() const { return store_.shape(); }

void LmdbCursor::throw_bad_value(std::int64_t id, const MDB_val& value) const {
  throw Error("table " + store_.table() + ": the value of id " + std::to_string(id) + " in '" + env_->data_path() +
                  "' is " + std::to_string(value.mv_size) + " bytes; expected " +
                  expected_value(env_->version(), store_.shape()),
              ErrorKind::corrupt);
}

std::optional<MDB_val> LmdbCursor::find(std::int64_t id) {
  if (in_write_txn_) return get(id);  // a write transaction's pages may move between steps: nothing kept
  constexpr std::size_t kAhead = 8;
  std::optional<MDB_val> found;
  if (ahead_.empty()) {
    found = get(id);
  } else {
    found = ahead_.front();
    ahead_.pop_front();
  }
  const auto ids = walk_.ids_ahead();
  while (ahead_.size() < std::min(kAhead, ids.size())) {
    ahead_.push_back(get(ids[ahead_.size()]));
    if (const auto& v = ahead_.back()) {
      const auto* p = static_cast<const char*>(v->mv_data);
      for (std::size_t offset = 0; offset < v->mv_size; offset += 64) __builtin_prefetch(p + offset);
    }
  }
  return found;
}

std::optional<MDB_val> LmdbCursor::get(std::int64_t id) {
  unsigned char key_bytes[8];
  encode_key(id, key_bytes);
  MDB_val key{8, key_bytes};
  MDB_val value{};
  const int rc = mdb_get(txn(), env_->images(), &key, &value);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != MDB_SUCCESS) fail(store_.table(), env_->path(), "mdb_get", rc);
  check_value(id, value);
  return value;
}

// The first row with id >= from. On the snapshot's cursor standing on from - 1 (the walk's every step after
// the first) that is the next key; otherwise a search.
std::optional<std::pair<std::int64_t, MDB_val>> LmdbCursor::first_from(std::int64_t from) {
  MDB_val key{};
  MDB_val value{};
  const bool adjacent = on_row_ && at_ < from && from == at_ + 1;
  const int rc = adjacent ? mdb_cursor_get(cursor_.get(), &key, &value, MDB_NEXT) : search(from, key, value);
  on_row_ = false;
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != MDB_SUCCESS) fail(store_.table(), env_->path(), "mdb_cursor_get", rc);
  const std::int64_t id = decode_key(static_cast<const unsigned char*>(key.mv_data));
  on_row_ = cursor_ != nullptr;
  at_ = id;
  if (id <= hi_) check_value(id, value);
  return std::pair{id, value};
}

// MDB_SET_RANGE to `from`: on the snapshot's cursor, or in a write transaction on a cursor of its innermost
// level, opened for this one search.
int LmdbCursor::search(std::int64_t from, MDB_val& key, MDB_val& value) {
  unsigned char key_bytes[8];
  encode_key(from, key_bytes);
  key = MDB_val{8, key_bytes};
  if (cursor_) return mdb_cursor_get(cursor_.get(), &key, &value, MDB_SET_RANGE);
  MDB_cursor* raw = nullptr;
  const int opened = mdb_cursor_open(txn(), env_->images(), &raw);
  if (opened != MDB_SUCCESS) fail(store_.table(), env_->path(), "mdb_cursor_open", opened);
  const CursorPtr transient(raw);
  return mdb_cursor_get(transient.get(), &key, &value, MDB_SET_RANGE);
}

void LmdbCursor::next() {
  if (at_end_) return;
  verified_ = false;
  at_end_ = !walk_.step([&](std::int64_t id) { return find(id); }, [&](std::int64_t from) { return first_from(from); });
}

}  // namespace


std::unique_ptr<Store> open_lmdb_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape", "timeout", "threads", "verify"}, args);
  threads_argument(parsed);  // accepted and checked for every module; lmdb has no codec work to share out
  const std::string path = parsed.require("path");
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_store_shape(*text, "table " + table + ": shape");
  const auto timeout = timeout_argument(parsed);
  const bool verify = verify_argument(parsed);
  return std::make_unique<LmdbStore>(table, path, open_env(table, path, shape, mode), timeout, verify);
}

}  // namespace imgstore
