#include "lmdb_env.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "file_registry.hpp"
#include "lmdb_format.hpp"
#include "posix_file.hpp"
#include "test_hooks.hpp"

namespace imgstore::lmdb {

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

std::size_t min_map_size() {
  const std::size_t lowered = test_hooks::lmdb_map_min();
  return lowered != 0 ? lowered : kMaxReserve;
}

std::size_t wanted_map_size(std::size_t used) { return std::max(min_map_size(), 2 * used); }


namespace {

FileRegistry<Env>& registry() {
  static FileRegistry<Env> instance(FileRegistry<Env>::Fork::reopen);  // an environment must not cross a fork
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

// Whether `path` exists (its stat in `st`). Only a regular file can be an LMDB data file: anything else is
// refused here with a message that says what it is.
bool stat_data_file(const std::string& table, const std::string& path, struct stat& st) {
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
  return exists;
}

// The environment this process already has open on the file `st`, if any (LMDB forbids a second one).
std::shared_ptr<Env> find_open_env(FileRegistry<Env>& reg, const struct stat& st, const std::string& table,
                                   const std::string& path, const std::optional<Shape>& wanted) {
  auto env = reg.find(st);
  if (env && wanted && *wanted != env->shape()) {
    throw shape_mismatch(table, *wanted, path, env->shape());
  }
  return env;
}

// mdb_env_open on `path`, its map reserved as wanted_map_size() says (lmdb_env.hpp).
// MDB_NOSUBDIR: `path` is the data file itself (the lock file is the path plus "-lock"). MDB_NOTLS: a read
// snapshot is not tied to its thread, so several cursors in one thread each have one.
EnvPtr create_env(const std::string& table, const std::string& path, std::size_t file_size, unsigned flags, int& rc) {
  // The reservation is address space; where it is short (ulimit -v, many stores in one process) mmap says
  // ENOMEM and a smaller map is tried, down to the least the file needs.
  const std::size_t least = round_up(std::max(min_map_size(), file_size * 2), kMiB);
  for (std::size_t map = round_up(wanted_map_size(file_size), kMiB);; map = std::max(least, map / 2)) {
    MDB_env* raw_env = nullptr;
    rc = mdb_env_create(&raw_env);
    if (rc != MDB_SUCCESS) fail(table, path, "mdb_env_create", rc);
    EnvPtr env(raw_env);
    mdb_env_set_maxdbs(env.get(), 4);
    mdb_env_set_maxreaders(env.get(), 512);
    mdb_env_set_mapsize(env.get(), map);
    rc = mdb_env_open(env.get(), path.c_str(), MDB_NOSUBDIR | MDB_NOTLS | flags, 0664);
    if (rc == ENOMEM && map > least) continue;
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) throw_not_lmdb(table, path, rc);
    if (rc != MDB_SUCCESS && rc != EROFS && rc != EACCES) fail(table, path, "mdb_env_open", rc);
    return rc == MDB_SUCCESS ? std::move(env) : EnvPtr();
  }
}

// An existing store on a read-only mount (EROFS) or without write permission (EACCES) is opened MDB_RDONLY,
// so it serves reads. Without permission to write the lock file either, it is read with MDB_NOLOCK: no reader
// slot, which is safe while nobody writes it (a store one may only read; said in docs/sql.md).
EnvPtr open_existing_env(const std::string& table, const std::string& path, std::size_t file_size, int& read_only) {
  int rc = 0;
  read_only = 0;
  for (const unsigned flags : {0u, unsigned{MDB_RDONLY}, unsigned{MDB_RDONLY | MDB_NOLOCK}}) {
    EnvPtr env = create_env(table, path, file_size, flags, rc);
    if (env) return env;
    read_only = rc;
  }
  fail(table, path, "mdb_env_open", rc);
}

// The store's two databases and the transaction that opened them: a write transaction that creates them in
// a new store (write_new_meta then commits it), a read-only one in an existing store (read_stored_shape).
struct Databases {
  TxnPtr txn;
  MDB_dbi images = 0;
  MDB_dbi meta = 0;
};

Databases open_databases(const std::string& table, const std::string& path, MDB_env* env, bool fresh) {
  Databases dbs;
  MDB_txn* raw_txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, fresh ? 0 : MDB_RDONLY, &raw_txn);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_begin", rc);
  dbs.txn.reset(raw_txn);
  const unsigned create = fresh ? MDB_CREATE : 0;
  rc = mdb_dbi_open(dbs.txn.get(), lmdb_format::images_db, create, &dbs.images);
  if (rc == MDB_SUCCESS) rc = mdb_dbi_open(dbs.txn.get(), lmdb_format::meta_db, create, &dbs.meta);
  if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
    throw Error("table " + table + ": '" + path +
                    "' is an LMDB file but not an imgstore store (no 'images' and 'meta' databases)",
                ErrorKind::cantopen);
  }
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_dbi_open", rc);
  return dbs;
}

// A new store: its format tag and shape, committed with the databases.
void write_new_meta(const std::string& table, const std::string& path, Databases& dbs, const Shape& shape) {
  put_meta(dbs.txn.get(), dbs.meta, "format", lmdb_format::format_tag);
  put_meta(dbs.txn.get(), dbs.meta, "shape", shape.str());
  const int rc = mdb_txn_commit(dbs.txn.release());
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_commit", rc);
}

// An existing store: its format tag checked, its stored shape read (and compared with the wanted one).
Shape read_stored_shape(const std::string& table, const std::string& path, Databases& dbs,
                        const std::optional<Shape>& wanted) {
  const std::string format = get_meta(dbs.txn.get(), dbs.meta, "format");
  if (format != lmdb_format::format_tag) {
    throw Error("table " + table + ": '" + path + "' has format '" + format + "'; expected '" +
                    lmdb_format::format_tag + "'",
                ErrorKind::corrupt);
  }
  const Shape shape = parse_shape(get_meta(dbs.txn.get(), dbs.meta, "shape"), "table " + table + ": stored shape");
  const int rc = mdb_txn_commit(dbs.txn.release());  // a read-only commit keeps the dbi handles open
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_commit", rc);
  if (wanted && *wanted != shape) {
    throw shape_mismatch(table, *wanted, path, shape);
  }
  return shape;
}

}  // namespace

// Opens the environment, creating the store when the file is new, and checks it is one of ours.
std::shared_ptr<Env> open_env(const std::string& table, const std::string& path,
                              const std::optional<Shape>& wanted, OpenMode mode) {
  auto& reg = registry();
  const std::lock_guard lock(reg.mutex());

  struct stat st{};
  const bool exists = stat_data_file(table, path, st);
  const bool fresh = !exists || st.st_size == 0;
  if (fresh && (!wanted || mode != OpenMode::create_if_missing)) throw_missing_store(table, path, mode);
  if (exists) {
    if (auto env = find_open_env(reg, st, table, path, wanted)) return env;
  }

  if (!fresh) check_meta_pages(table, path, static_cast<std::uint64_t>(st.st_size));
  UndoCreatedFiles undo(path);  // declared before env: it runs after a failed open has closed the environment
  int read_only = 0;
  int rc = 0;
  EnvPtr env = fresh ? create_env(table, path, 0, 0, rc) : open_existing_env(table, path, static_cast<std::size_t>(st.st_size), read_only);
  if (!env) fail(table, path, "mdb_env_open", rc);
  Databases dbs = open_databases(table, path, env.get(), fresh);
  Shape shape;
  if (fresh) {
    shape = *wanted;
    write_new_meta(table, path, dbs, shape);
  } else {
    shape = read_stored_shape(table, path, dbs, wanted);
  }

  auto shared = std::make_shared<Env>(std::move(env), path, shape, dbs.images, read_only);
  reg.add(path, table, shared);
  undo.keep();
  return shared;
}

std::size_t open_environments() { return registry().open_count(); }

void Env::claim_writer(const std::string& table, std::chrono::milliseconds timeout) {
  if (read_only_ != 0) throw_read_only(table, path_, read_only_);
  const bool claimed = wait_for([&] {
    bool expected = false;
    return writing_.compare_exchange_strong(expected, true);
  }, timeout);
  if (!claimed) throw_writer_busy(table, path_, "another connection in this process", timeout);
  try {
    WriterLock lock(LockSpot{path_}, timeout, "table " + table);  // byte 0 of the data file
    if (!lock) throw_writer_busy(table, path_, "another process", timeout);
    writer_lock_ = std::move(lock);
  } catch (...) {
    writing_.store(false);
    throw;
  }
}

void Env::release_writer() noexcept {
  writer_lock_.release();
  writing_.store(false);
}

}  // namespace imgstore::lmdb
