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
// Map size: never set by the user. It starts at max(1 GiB, twice the file) and grows before a write
// transaction whenever less than half the data size (or 512 MiB) is free; on 64-bit it costs address space only.

#include "lmdb_store.hpp"

#include <lmdb.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "args.hpp"
#include "busy.hpp"
#include "file_registry.hpp"
#include "lmdb_format.hpp"
#include "posix_file.hpp"

namespace imgstore {

namespace {

using lmdb_format::decode_key;
using lmdb_format::encode_key;
using lmdb_format::decode_label;
using lmdb_format::encode_label;
using lmdb_format::label_bytes;


ErrorKind kind_of(int rc) {
  switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
    case EDQUOT:
      return ErrorKind::full;
    case MDB_READERS_FULL:
    case EBUSY:
    case EAGAIN:
      return ErrorKind::busy;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_VERSION_MISMATCH:
      return ErrorKind::corrupt;
    case MDB_INVALID:
    case EACCES:
    case ENOENT:
    case EISDIR:
      return ErrorKind::cantopen;
    case ENOMEM:
      return ErrorKind::nomem;
    default:
      return ErrorKind::generic;
  }
}

[[noreturn]] void fail(const std::string& table, const std::string& path, const char* call, int rc) {
  std::string message = "table " + table + ": " + call + " on '" + path + "' failed: " + mdb_strerror(rc);
  ErrorKind kind = kind_of(rc);
  // LMDB reports a short write (a full disk) as EIO: say which it was.
  struct statvfs fs{};
  if ((rc == EIO || rc == ENOSPC) && ::statvfs(path.c_str(), &fs) == 0 &&
      static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < (std::uint64_t{16} << 20)) {
    message += " (the file system is full: " + std::to_string(static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize) +
               " bytes free; the transaction was rolled back)";
    kind = ErrorKind::full;
  }
  throw Error(message, kind);
}

struct EnvClose {
  void operator()(MDB_env* env) const noexcept { mdb_env_close(env); }
};
struct TxnAbort {
  void operator()(MDB_txn* txn) const noexcept { mdb_txn_abort(txn); }
};
struct CursorClose {
  void operator()(MDB_cursor* cursor) const noexcept { mdb_cursor_close(cursor); }
};
using EnvPtr = std::unique_ptr<MDB_env, EnvClose>;
using TxnPtr = std::unique_ptr<MDB_txn, TxnAbort>;
using CursorPtr = std::unique_ptr<MDB_cursor, CursorClose>;

constexpr std::size_t kMiB = std::size_t{1} << 20;

// Smallest map: 1 GiB. IMGSTORE_LMDB_MAP_MIN (bytes) lowers it so tests can watch the map grow.
std::size_t min_map_size() {
  if (const char* text = std::getenv("IMGSTORE_LMDB_MAP_MIN")) {
    const long long n = std::atoll(text);
    if (n >= static_cast<long long>(kMiB)) return static_cast<std::size_t>(n);
  }
  return std::size_t{1} << 30;
}

std::size_t round_up(std::size_t n, std::size_t unit) { return (n + unit - 1) / unit * unit; }

// One per data file per process. LMDB forbids opening one file twice in a process (its locks would break).
class Env {
 public:
  // One live transaction of this process on the file, counted from construction to destruction.
  // mdb_env_set_mapsize is only safe while this process has none, so a count never given back would stop
  // the map from ever growing again: the count is an object, released whatever way its owner goes.
  class Live {
   public:
    Live() = default;
    explicit Live(Env& env) : env_(&env) { env.enter(); }
    Live(Live&& other) noexcept : env_(std::exchange(other.env_, nullptr)) {}
    Live& operator=(Live&& other) noexcept {
      if (this != &other) {
        const Live gone(std::move(*this));
        env_ = std::exchange(other.env_, nullptr);
      }
      return *this;
    }
    Live(const Live&) = delete;
    Live& operator=(const Live&) = delete;
    ~Live() {
      if (env_ != nullptr) env_->leave();
    }

   private:
    Env* env_ = nullptr;
  };

  // A read-only snapshot, counted as live while held; its destructor resets it into the pool.
  class Snapshot {
   public:
    Snapshot() = default;
    Snapshot(Env& env, Live live, TxnPtr txn) noexcept : env_(&env), live_(std::move(live)), txn_(std::move(txn)) {}
    Snapshot(Snapshot&&) noexcept = default;
    Snapshot& operator=(Snapshot&&) = delete;
    ~Snapshot() {
      if (txn_) env_->recycle(std::move(txn_));  // then live_ goes: the reader is reset before it stops counting
    }
    MDB_txn* get() const { return txn_.get(); }

   private:
    Env* env_ = nullptr;
    Live live_;
    TxnPtr txn_;
  };

  // A write transaction and its count.
  struct Write {
    Live live;
    TxnPtr txn;
  };

  Env(EnvPtr env, std::string path, Shape shape, MDB_dbi images)
      : env_(std::move(env)), path_(std::move(path)), shape_(shape), images_(images) {
    spare_readers_.reserve(kSpareReaders);  // so that recycle() never allocates
  }

  MDB_env* get() const { return env_.get(); }
  const std::string& path() const { return path_; }
  const Shape& shape() const { return shape_; }
  MDB_dbi images() const { return images_; }

  // A read-only snapshot, recycled from a small pool (mdb_txn_renew is cheaper than begin).
  Snapshot take_reader(const std::string& table) {
    if (TxnPtr txn = spare_reader()) {
      Live live(*this);
      const int rc = mdb_txn_renew(txn.get());
      if (rc == MDB_SUCCESS) return Snapshot(*this, std::move(live), std::move(txn));
      if (rc != MDB_MAP_RESIZED) fail(table, path_, "mdb_txn_renew", rc);
    }  // not counted any more: begin_txn may adopt a grown map only while this process has nothing live
    Write begun = begin_txn(table, MDB_RDONLY, "mdb_txn_begin (read)");
    return Snapshot(*this, std::move(begun.live), std::move(begun.txn));
  }

  // Claims this process's one write slot. LMDB's writer lock would block this very thread forever if a second
  // connection in the same process asked for it, so wait a little here and then report busy.
  void claim_writer(const std::string& table) {
    const bool claimed = wait_for([&] {
      bool expected = false;
      return writing_.compare_exchange_strong(expected, true);
    });
    if (!claimed) throw_writer_busy(table, path_, "another connection in this process");
  }
  void release_writer() noexcept { writing_.store(false); }

  Write begin_write(const std::string& table) {
    grow_map_if_needed(table);
    return begin_txn(table, 0, "mdb_txn_begin (write)");
  }

  // After MDB_MAP_FULL the transaction is lost; make sure the next one has room for at least twice what the
  // failed one tried to write (at least four times the old map: the failed one did not get to its end).
  void map_was_full(std::size_t txn_bytes) noexcept {
    std::size_t seen = grow_hint_.load();
    while (seen < txn_bytes && !grow_hint_.compare_exchange_weak(seen, txn_bytes)) {
    }
    if (seen == 0 && txn_bytes == 0) grow_hint_.store(1);
  }
  std::size_t map_size() const {
    MDB_envinfo info{};
    mdb_env_info(env_.get(), &info);
    return info.me_mapsize;
  }

 private:
  static constexpr std::size_t kSpareReaders = 8;

  void enter() {
    const std::lock_guard lock(mutex_);
    ++live_;
  }
  void leave() noexcept {
    const std::lock_guard lock(mutex_);
    --live_;
  }

  TxnPtr spare_reader() {
    const std::lock_guard lock(mutex_);
    if (spare_readers_.empty()) return nullptr;
    TxnPtr txn = std::move(spare_readers_.back());
    spare_readers_.pop_back();
    return txn;
  }

  void recycle(TxnPtr txn) noexcept {
    mdb_txn_reset(txn.get());
    const std::lock_guard lock(mutex_);
    if (spare_readers_.size() < kSpareReaders) spare_readers_.push_back(std::move(txn));
  }

  // Begins a top-level transaction. MDB_MAP_RESIZED means another process grew the map: adopt its size
  // (only possible while this process has no live transaction on the file) and try once more.
  Write begin_txn(const std::string& table, unsigned flags, const char* call) {
    for (int attempt = 0;; ++attempt) {
      int rc;
      {
        Live live(*this);
        MDB_txn* raw = nullptr;
        rc = mdb_txn_begin(env_.get(), nullptr, flags, &raw);
        if (rc == MDB_SUCCESS) return Write{std::move(live), TxnPtr(raw)};
      }
      if (rc != MDB_MAP_RESIZED || attempt > 0) fail(table, path_, call, rc);
      const std::lock_guard lock(mutex_);
      if (live_ != 0) {
        throw Error("table " + table + ": another process grew the map of '" + path_ +
                        "' while this one is reading it; finish the open queries and try again",
                    ErrorKind::busy);
      }
      const int resized = mdb_env_set_mapsize(env_.get(), 0);
      if (resized != MDB_SUCCESS) fail(table, path_, "mdb_env_set_mapsize", resized);
    }
  }

  void grow_map_if_needed(const std::string& table) {
    const std::lock_guard lock(mutex_);
    if (live_ != 0) return;  // readers of this process hold pointers into the map: grow next time
    MDB_envinfo info{};
    MDB_stat stat{};
    mdb_env_info(env_.get(), &info);
    mdb_env_stat(env_.get(), &stat);
    const std::size_t used = (info.me_last_pgno + 1) * std::size_t{stat.ms_psize};
    const std::size_t want_free = std::max(used, min_map_size()) / 2;
    const std::size_t hint = grow_hint_.exchange(0);
    if (hint == 0 && info.me_mapsize - std::min(used, info.me_mapsize) >= want_free) return;
    const std::size_t target = round_up(
        std::max({info.me_mapsize * (hint != 0 ? 4 : 1), used * 2 + min_map_size(), used + 4 * hint}), kMiB);
    const int rc = mdb_env_set_mapsize(env_.get(), target);
    if (rc != MDB_SUCCESS) fail(table, path_, "mdb_env_set_mapsize", rc);
  }

  EnvPtr env_;
  const std::string path_;
  const Shape shape_;
  const MDB_dbi images_;
  std::mutex mutex_;
  int live_ = 0;  // live transactions of this process (Live objects)
  std::atomic<bool> writing_{false};
  std::atomic<std::size_t> grow_hint_{0};  // bytes a failed transaction wanted to write
  std::vector<TxnPtr> spare_readers_;
};

FileRegistry<Env>& registry() {
  static FileRegistry<Env> instance;
  return instance;
}

std::string get_meta(MDB_txn* txn, MDB_dbi meta, const char* key) {
  MDB_val k{std::strlen(key), const_cast<char*>(key)};
  MDB_val v{};
  if (mdb_get(txn, meta, &k, &v) != MDB_SUCCESS) return {};
  return std::string(static_cast<const char*>(v.mv_data), v.mv_size);
}

void put_meta(MDB_txn* txn, MDB_dbi meta, const char* key, const std::string& value) {
  MDB_val k{std::strlen(key), const_cast<char*>(key)};
  MDB_val v{value.size(), const_cast<char*>(value.data())};
  const int rc = mdb_put(txn, meta, &k, &v, 0);
  if (rc != MDB_SUCCESS) throw Error(std::string("mdb_put(meta) failed: ") + mdb_strerror(rc), kind_of(rc));
}

[[noreturn]] void throw_not_lmdb(const std::string& table, const std::string& path, int rc) {
  throw Error("table " + table + ": '" + path + "' is not an LMDB file (" + mdb_strerror(rc) + ")",
              ErrorKind::cantopen);
}

// LMDB trusts its file: a data file cut short makes it fault (SIGBUS) on pages past the end. So before
// handing an existing file to LMDB, read its two meta pages (LMDB's documented layout: a 16-byte page header,
// then magic, version, address, map size, two 48-byte database records, the last page number, the txn id;
// the page size is in the first database record) and refuse a file that is shorter than they say.
void check_meta_pages(const std::string& table, const std::string& path, std::uint64_t file_size) {
  constexpr std::uint32_t kMagic = 0xBEEFC0DE;
  constexpr std::size_t kHeader = 16;
  const auto damaged = [&](const std::string& why) {
    return Error("table " + table + ": '" + path + "' is not a usable LMDB file: " + why, ErrorKind::corrupt);
  };
  std::FILE* raw = std::fopen(path.c_str(), "rb");
  if (raw == nullptr) return;  // mdb_env_open reports it
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(raw, std::fclose);
  unsigned char meta[kHeader + 136];
  const std::size_t got = std::fread(meta, 1, sizeof meta, file.get());
  std::uint32_t magic = 0;
  if (got >= kHeader + 4) std::memcpy(&magic, meta + kHeader, 4);
  // Not LMDB at all: said here, before mdb_env_open would create a lock file beside it.
  if (magic != kMagic) throw_not_lmdb(table, path, MDB_INVALID);
  if (got != sizeof meta) throw damaged("shorter than its first meta page");
  std::uint32_t page_size = 0;
  std::memcpy(&page_size, meta + kHeader + 24, 4);  // mm_dbs[FREE_DBI].md_pad holds the page size
  if (page_size < 512 || page_size > (1u << 16) || (page_size & (page_size - 1)) != 0) {
    throw damaged("its page size " + std::to_string(page_size) + " is not a power of two from 512 to 65536");
  }
  if (file_size < 2ull * page_size) throw damaged("it is " + std::to_string(file_size) + " bytes, less than its two meta pages");
  std::uint64_t best_txn = 0;
  std::uint64_t last_page = 0;
  std::uint64_t roots[2] = {0, 0};  // the free and main B-trees' root pages
  for (int m = 0; m < 2; ++m) {
    if (std::fseek(file.get(), static_cast<long>(m) * page_size, SEEK_SET) != 0 ||
        std::fread(meta, 1, sizeof meta, file.get()) != sizeof meta) {
      throw damaged("cannot read meta page " + std::to_string(m));
    }
    std::memcpy(&magic, meta + kHeader, 4);
    std::uint64_t txn = 0;
    std::memcpy(&txn, meta + kHeader + 128, 8);
    if (magic == kMagic && txn >= best_txn) {
      best_txn = txn;
      std::memcpy(&last_page, meta + kHeader + 120, 8);
      std::memcpy(&roots[0], meta + kHeader + 24 + 40, 8);  // mm_dbs[0].md_root
      std::memcpy(&roots[1], meta + kHeader + 72 + 40, 8);  // mm_dbs[1].md_root
    }
  }
  // No real file has 2^40 pages; a larger number is damage (and would overflow any size computed from it).
  if (last_page >= (1ull << 40)) {
    throw damaged("its meta page names page " + std::to_string(last_page) + " as its last, more than 2^40 pages (damaged)");
  }
  // A writer in another process may have committed since the caller's stat; the pages its meta page names
  // were written before it, so the size is taken again now (an LMDB file never shrinks).
  struct stat now{};
  if (::fstat(::fileno(file.get()), &now) == 0) file_size = std::max<std::uint64_t>(file_size, static_cast<std::uint64_t>(now.st_size));
  // The pages the B-trees start from must be in the file. (Not the last page number: pages a transaction
  // allocated and freed again were never written, so a sound file can be shorter than last_page says.)
  constexpr std::uint64_t kNoRoot = ~std::uint64_t{0};
  for (const std::uint64_t root : roots) {
    if (root != kNoRoot && root >= file_size / page_size) {
      throw damaged("it is " + std::to_string(file_size) + " bytes but its meta page says a B-tree starts at page " +
                    std::to_string(root) + " of " + std::to_string(page_size) + " bytes (truncated)");
    }
  }
}

// mdb_env_open creates `path-lock`, and `path` for a new store. An open that fails after it (another
// program's LMDB file, a wrong shape, ...) must leave the directory as it was, so this removes the files the
// open created, unless keep() is called. Only when no other process has the environment open: every LMDB
// process holds a shared lock on the lock file's first byte, so taking a write lock there means none does.
class UndoCreatedFiles {
 public:
  explicit UndoCreatedFiles(std::string path)
      : path_(std::move(path)), lock_path_(path_ + "-lock"), data_created_(!exists(path_)),
        lock_created_(!exists(lock_path_)) {}
  UndoCreatedFiles(const UndoCreatedFiles&) = delete;
  UndoCreatedFiles& operator=(const UndoCreatedFiles&) = delete;
  void keep() noexcept { keep_ = true; }

  ~UndoCreatedFiles() {
    if (keep_ || (!data_created_ && !lock_created_)) return;
    const Fd lock(::open(lock_path_.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!lock) return;
    struct flock whole{};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET;
    whole.l_start = 0;
    whole.l_len = 1;
    if (::fcntl(lock.get(), F_SETLK, &whole) != 0) return;  // in use by another process: theirs now
    if (data_created_) ::unlink(path_.c_str());
    if (lock_created_) ::unlink(lock_path_.c_str());
  }  // closing `lock` drops the write lock

 private:
  static bool exists(const std::string& path) {
    struct stat st{};
    return ::lstat(path.c_str(), &st) == 0;
  }

  const std::string path_;
  const std::string lock_path_;
  const bool data_created_;
  const bool lock_created_;
  bool keep_ = false;
};

// Opens the environment, creating the store when the file is new, and checks it is one of ours.
std::shared_ptr<Env> open_env(const std::string& table, const std::string& path,
                              const std::optional<Shape>& wanted, OpenMode mode) {
  auto& reg = registry();
  const std::lock_guard lock(reg.mutex());

  struct stat st{};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    throw Error("table " + table + ": path '" + path +
                    "' is a directory; expected an LMDB data file (its lock file is the path plus '-lock')",
                ErrorKind::cantopen);
  }
  if (exists && !S_ISREG(st.st_mode)) {
    throw Error("table " + table + ": path '" + path + "' is not a regular file; expected an LMDB data file",
                ErrorKind::cantopen);
  }
  const bool fresh = !exists || st.st_size == 0;
  if (fresh && (!wanted || mode != OpenMode::create_if_missing)) throw_missing_store(table, path, mode);
  if (exists) {
    if (auto env = reg.find(st)) {
      if (wanted && *wanted != env->shape()) {
        throw shape_mismatch(table, *wanted, path, env->shape());
      }
      return env;
    }
  }

  if (!fresh) check_meta_pages(table, path, static_cast<std::uint64_t>(st.st_size));
  UndoCreatedFiles undo(path);  // declared before env: it runs after a failed open has closed the environment
  MDB_env* raw_env = nullptr;
  int rc = mdb_env_create(&raw_env);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_env_create", rc);
  EnvPtr env(raw_env);
  mdb_env_set_maxdbs(env.get(), 4);
  mdb_env_set_maxreaders(env.get(), 512);
  const std::size_t file_size = exists ? static_cast<std::size_t>(st.st_size) : 0;
  mdb_env_set_mapsize(env.get(), round_up(std::max(min_map_size(), file_size * 2), kMiB));
  rc = mdb_env_open(env.get(), path.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0664);
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) throw_not_lmdb(table, path, rc);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_env_open", rc);

  MDB_txn* raw_txn = nullptr;
  rc = mdb_txn_begin(env.get(), nullptr, fresh ? 0 : MDB_RDONLY, &raw_txn);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_begin", rc);
  TxnPtr txn(raw_txn);
  MDB_dbi images = 0;
  MDB_dbi meta = 0;
  const unsigned create = fresh ? MDB_CREATE : 0;
  rc = mdb_dbi_open(txn.get(), lmdb_format::images_db, create, &images);
  if (rc == MDB_SUCCESS) rc = mdb_dbi_open(txn.get(), lmdb_format::meta_db, create, &meta);
  if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
    throw Error("table " + table + ": '" + path +
                    "' is an LMDB file but not an imgstore store (no 'images' and 'meta' databases)",
                ErrorKind::cantopen);
  }
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_dbi_open", rc);

  Shape shape;
  if (fresh) {
    shape = *wanted;
    put_meta(txn.get(), meta, "format", lmdb_format::format_tag);
    put_meta(txn.get(), meta, "shape", shape.str());
    rc = mdb_txn_commit(txn.release());
    if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_commit", rc);
  } else {
    const std::string format = get_meta(txn.get(), meta, "format");
    if (format != lmdb_format::format_tag) {
      throw Error("table " + table + ": '" + path + "' has format '" + format + "'; expected '" +
                      lmdb_format::format_tag + "'",
                  ErrorKind::corrupt);
    }
    shape = parse_shape(get_meta(txn.get(), meta, "shape"), "table " + table + ": stored shape");
    rc = mdb_txn_commit(txn.release());  // a read-only commit keeps the dbi handles open
    if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_commit", rc);
    if (wanted && *wanted != shape) {
      throw shape_mismatch(table, *wanted, path, shape);
    }
  }

  auto shared = std::make_shared<Env>(std::move(env), path, shape, images);
  reg.add(path, table, shared);
  undo.keep();
  return shared;
}

class LmdbStore;

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
  std::span<const std::uint8_t> pixels() override {
    const MDB_val& value = walk_.value();
    return {static_cast<const std::uint8_t*>(value.mv_data) + label_bytes, value.mv_size - label_bytes};
  }

 private:
  MDB_txn* txn() const;
  std::optional<MDB_val> find(std::int64_t id);
  std::optional<std::pair<std::int64_t, MDB_val>> first_from(std::int64_t from);
  int search(std::int64_t from, MDB_val& key, MDB_val& value);
  void check_value(std::int64_t id, const MDB_val& value) const {
    if (value.mv_size != value_bytes_) throw_bad_value(id, value);
  }
  [[noreturn]] void throw_bad_value(std::int64_t id, const MDB_val& value) const;

  LmdbStore& store_;
  const bool in_write_txn_;
  Env::Snapshot reader_;  // before cursor_, which must close first; given back even if the constructor throws
  CursorPtr cursor_;  // only for a scan of the snapshot: a write transaction's cursors die with its savepoints
  bool on_row_ = false;  // cursor_ stands on the row with id at_
  std::int64_t at_ = -1;
  const std::size_t value_bytes_;  // label and pixels
  const std::int64_t hi_;  // the range's end: a row past it ends the walk unread, so it is not checked
  IdWalk<MDB_val> walk_;
  bool at_end_ = false;
};

class LmdbStore final : public Store {
 public:
  LmdbStore(std::string table, std::shared_ptr<Env> env) : table_(std::move(table)), env_(std::move(env)) {}

  ~LmdbStore() override {
    if (!levels_.empty()) rollback();
  }

  const Shape& shape() const override { return env_->shape(); }
  const std::string& table() const { return table_; }
  Env& env() { return *env_; }
  MDB_txn* write_txn() const { return levels_.empty() ? nullptr : levels_.back().txn; }

  std::uint64_t count() override {
    MDB_stat stat{};
    with_txn([&](MDB_txn* txn) { mdb_stat(txn, env_->images(), &stat); });
    return stat.ms_entries;
  }

  std::optional<std::int64_t> max_id() override {
    std::optional<std::int64_t> result;
    with_txn([&](MDB_txn* txn) {
      MDB_cursor* raw = nullptr;
      if (mdb_cursor_open(txn, env_->images(), &raw) != MDB_SUCCESS) return;
      const CursorPtr cursor(raw);
      MDB_val key{};
      MDB_val value{};
      if (mdb_cursor_get(cursor.get(), &key, &value, MDB_LAST) == MDB_SUCCESS && key.mv_size == 8) {
        result = decode_key(static_cast<const unsigned char*>(key.mv_data));
      }
    });
    return result;
  }

  std::unique_ptr<Cursor> scan(IdRange range) override {
    return std::make_unique<LmdbCursor>(*this, range, std::vector<std::int64_t>{}, false);
  }
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override {
    return std::make_unique<LmdbCursor>(*this, IdRange{}, std::move(ids), true);
  }

  void put(const Image& image, bool replace) override {
    MDB_txn* txn = require_write("INSERT");
    unsigned char key_bytes[8];
    encode_key(image.id, key_bytes);
    MDB_val key{8, key_bytes};
    MDB_val value{label_bytes + image.pixels.size(), nullptr};
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
    auto* out = static_cast<unsigned char*>(value.mv_data);
    encode_label(image.label, out);
    std::memcpy(out + label_bytes, image.pixels.data(), image.pixels.size());
    last_id_ = std::max(*last_id_, image.id);
    // Values over half a page go to overflow pages of their own: count whole pages.
    txn_bytes_ += round_up(value.mv_size + 16, value.mv_size > 2000 ? 4096 : 1);
  }

  bool set_label(std::int64_t id, std::int64_t label) override {
    MDB_txn* txn = require_write("UPDATE");
    unsigned char key_bytes[8];
    encode_key(id, key_bytes);
    MDB_val key{8, key_bytes};
    MDB_val old{};
    const int rc = mdb_get(txn, env_->images(), &key, &old);
    if (rc == MDB_NOTFOUND) return false;
    check_write(rc, "mdb_get");
    // Copy first: the old value's page may be the one the put rewrites.
    scratch_.assign(static_cast<const unsigned char*>(old.mv_data),
                    static_cast<const unsigned char*>(old.mv_data) + old.mv_size);
    encode_label(label, scratch_.data());
    MDB_val value{scratch_.size(), scratch_.data()};
    check_write(mdb_put(txn, env_->images(), &key, &value, 0), "mdb_put");
    return true;
  }

  bool erase(std::int64_t id) override {
    MDB_txn* txn = require_write("DELETE");
    unsigned char key_bytes[8];
    encode_key(id, key_bytes);
    MDB_val key{8, key_bytes};
    const int rc = mdb_del(txn, env_->images(), &key, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    check_write(rc, "mdb_del");
    return true;
  }

  std::vector<std::string> check(bool full) override {
    std::vector<std::string> problems;
    const std::size_t expected = label_bytes + shape().bytes();
    with_txn([&](MDB_txn* txn) {
      MDB_cursor* raw = nullptr;
      if (const int rc = mdb_cursor_open(txn, env_->images(), &raw); rc != MDB_SUCCESS) {
        problems.push_back(std::string("cannot read the images database: ") + mdb_strerror(rc));
        return;
      }
      const CursorPtr cursor(raw);
      MDB_val key{};
      MDB_val value{};
      std::uint64_t sum = 0;
      int rc;
      while ((rc = mdb_cursor_get(cursor.get(), &key, &value, MDB_NEXT)) == MDB_SUCCESS) {
        if (key.mv_size != 8) {
          problems.push_back("a key of " + std::to_string(key.mv_size) + " bytes; expected 8 (a big-endian id)");
          continue;
        }
        const std::int64_t id = decode_key(static_cast<const unsigned char*>(key.mv_data));
        if (id < 0) problems.push_back("id " + std::to_string(id) + " is negative");
        if (value.mv_size != expected) {
          problems.push_back("id " + std::to_string(id) + ": value of " + std::to_string(value.mv_size) + " bytes; expected " +
                             std::to_string(expected));
        } else if (full) {
          // Reading every byte makes LMDB fault in every overflow page: I/O errors show here.
          const auto* p = static_cast<const unsigned char*>(value.mv_data);
          for (std::size_t i = 0; i < value.mv_size; i += 64) sum += p[i];
        }
      }
      if (rc != MDB_NOTFOUND) problems.push_back(std::string("the scan stopped: ") + mdb_strerror(rc));
      (void)sum;
    });
    return problems;
  }

  void begin() override {
    if (!levels_.empty()) return;
    env_->claim_writer(table_);
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

  void sync() override {
    if (levels_.empty()) return;
    levels_.clear();
    const int rc = mdb_txn_commit(base_.release());  // frees the handle on failure too
    finish();
    if (rc != MDB_SUCCESS) {
      if (rc == MDB_MAP_FULL) env_->map_was_full(txn_bytes_);
      fail(table_, env_->path(), "mdb_txn_commit", rc);
    }
  }


  void rollback() override {
    if (levels_.empty()) return;
    levels_.clear();
    base_.reset();  // aborts the base and every nested transaction
    finish();
  }

  void savepoint(int level) override {
    if (levels_.empty()) return;
    MDB_txn* child = nullptr;
    const int rc = mdb_txn_begin(env_->get(), levels_.back().txn, 0, &child);
    if (rc != MDB_SUCCESS) fail(table_, env_->path(), "mdb_txn_begin (nested)", rc);
    levels_.push_back({level, child});
  }

  void release(int level) override {
    while (levels_.size() > 1 && levels_.back().level >= level) {
      MDB_txn* child = levels_.back().txn;
      levels_.pop_back();
      const int rc = mdb_txn_commit(child);
      if (rc != MDB_SUCCESS) fail(table_, env_->path(), "mdb_txn_commit (nested)", rc);
    }
  }

  void rollback_to(int level) override {
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

  // Runs f on the write transaction if one is open, else on a read snapshot.
  template <typename F>
  void with_txn(F&& f) {
    if (MDB_txn* txn = write_txn()) {
      f(txn);
      return;
    }
    const Env::Snapshot reader = env_->take_reader(table_);
    f(reader.get());
  }

 private:
  struct Level {
    int level;
    MDB_txn* txn;  // owned by base_ (aborting a parent aborts its children)
  };

  MDB_txn* require_write(const char* what) {
    if (levels_.empty()) {
      throw Error("table " + table_ + ": " + what + " outside a transaction (SQLite did not call xBegin)");
    }
    return levels_.back().txn;
  }

  void check_write(int rc, const char* call) {
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

  void finish() noexcept {
    base_live_ = Env::Live();
    env_->release_writer();
    last_id_.reset();
  }

  const std::string table_;
  const std::shared_ptr<Env> env_;
  TxnPtr base_;
  Env::Live base_live_;  // counts base_ while it lives
  std::vector<Level> levels_;
  std::optional<std::int64_t> last_id_;  // largest id in the write transaction, for MDB_APPEND
  std::vector<unsigned char> scratch_;
  std::size_t txn_bytes_ = 0;  // written in this transaction, to size the map after MDB_MAP_FULL
};

LmdbCursor::LmdbCursor(LmdbStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids)
    : store_(store), in_write_txn_(store.write_txn() != nullptr),
      reader_(in_write_txn_ ? Env::Snapshot() : store.env().take_reader(store.table())),
      value_bytes_(label_bytes + store.shape().bytes()), hi_(range.hi), walk_(range, std::move(ids), by_ids) {
  if (!in_write_txn_ && !by_ids) {
    MDB_cursor* raw = nullptr;
    const int rc = mdb_cursor_open(reader_.get(), store_.env().images(), &raw);
    if (rc != MDB_SUCCESS) fail(store_.table(), store_.env().path(), "mdb_cursor_open", rc);
    cursor_.reset(raw);
  }
  next();
}

MDB_txn* LmdbCursor::txn() const {
  if (!in_write_txn_) return reader_.get();
  MDB_txn* txn = store_.write_txn();
  if (txn == nullptr) {
    throw Error("table " + store_.table() + ": the transaction ended while a query was still reading it");
  }
  return txn;
}

void LmdbCursor::throw_bad_value(std::int64_t id, const MDB_val& value) const {
  throw Error("table " + store_.table() + ": the value of id " + std::to_string(id) + " in '" + store_.env().path() +
                  "' is " + std::to_string(value.mv_size) + " bytes; expected " + std::to_string(value_bytes_) +
                  " (8-byte label + pixels)",
              ErrorKind::corrupt);
}

std::optional<MDB_val> LmdbCursor::find(std::int64_t id) {
  unsigned char key_bytes[8];
  encode_key(id, key_bytes);
  MDB_val key{8, key_bytes};
  MDB_val value{};
  const int rc = mdb_get(txn(), store_.env().images(), &key, &value);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != MDB_SUCCESS) fail(store_.table(), store_.env().path(), "mdb_get", rc);
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
  if (rc != MDB_SUCCESS) fail(store_.table(), store_.env().path(), "mdb_cursor_get", rc);
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
  const int opened = mdb_cursor_open(txn(), store_.env().images(), &raw);
  if (opened != MDB_SUCCESS) fail(store_.table(), store_.env().path(), "mdb_cursor_open", opened);
  const CursorPtr transient(raw);
  return mdb_cursor_get(transient.get(), &key, &value, MDB_SET_RANGE);
}

void LmdbCursor::next() {
  if (at_end_) return;
  at_end_ = !walk_.step([&](std::int64_t id) { return find(id); }, [&](std::int64_t from) { return first_from(from); });
}

}  // namespace

std::size_t lmdb_open_environments() { return registry().open_count(); }

std::unique_ptr<Store> open_lmdb_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape"}, args);
  const std::string path = parsed.require("path");
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_shape(*text, "table " + table + ": shape");
  return std::make_unique<LmdbStore>(table, open_env(table, path, shape, mode));
}

}  // namespace imgstore
