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

// mdb_env_open creates the lock file when it is missing. An open that fails after it (another program's LMDB
// file, a wrong shape, ...) must leave the directory as it was, so this removes the lock file the open created,
// unless keep() is called. Only when no other process has the environment open: every LMDB process holds a
// shared lock on the lock file's first byte, so taking a write lock there means none does.
class UndoCreatedLock {
 public:
  explicit UndoCreatedLock(std::string lock_path) : lock_path_(std::move(lock_path)), created_(!exists(lock_path_)) {}
  UndoCreatedLock(const UndoCreatedLock&) = delete;
  UndoCreatedLock& operator=(const UndoCreatedLock&) = delete;
  void keep() noexcept { keep_ = true; }

  ~UndoCreatedLock() {
    if (keep_ || !created_) return;
    const Fd lock(::open(lock_path_.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!lock) return;
    struct flock whole{};
    whole.l_type = F_WRLCK;
    whole.l_whence = SEEK_SET;
    whole.l_start = 0;
    whole.l_len = 1;
    if (::fcntl(lock.get(), F_SETLK, &whole) != 0) return;  // in use by another process: theirs now
    ::unlink(lock_path_.c_str());
  }  // closing `lock` drops the write lock

 private:
  static bool exists(const std::string& path) {
    struct stat st{};
    return ::lstat(path.c_str(), &st) == 0;
  }

  const std::string lock_path_;
  const bool created_;
  bool keep_ = false;
};

// The environment this process already has open on the file `st`, if any (LMDB forbids a second one).
std::shared_ptr<Env> find_open_env(FileRegistry<Env>& reg, const struct stat& st, const std::string& table,
                                   const std::string& path, const std::optional<Shape>& wanted) {
  auto env = reg.find(st);
  if (env && wanted && *wanted != env->shape()) {
    throw shape_mismatch(table, *wanted, path, env->shape());
  }
  return env;
}

// An existing store on a read-only mount (EROFS) or without write permission (EACCES) is opened MDB_RDONLY,
// so it serves reads. Without permission to write the lock file either, it is read with MDB_NOLOCK: no reader
// slot, which is safe while nobody writes it (a store one may only read; said in docs/sql.md).
EnvPtr open_existing_env(const std::string& table, const Layout& layout, std::size_t file_size, int& read_only) {
  int rc = 0;
  read_only = 0;
  for (const unsigned flags : {0u, unsigned{MDB_RDONLY}, unsigned{MDB_RDONLY | MDB_NOLOCK}}) {
    EnvPtr env = create_env(table, layout, file_size, flags, rc);
    if (env) return env;
    read_only = rc;
  }
  fail(table, layout.store, "mdb_env_open", rc);
}

// The identity of the data file `env` has open.
std::optional<FileId> data_file_id(MDB_env* env) {
  mdb_filehandle_t fd = -1;
  if (mdb_env_get_fd(env, &fd) != MDB_SUCCESS) return std::nullopt;
  return file_id(fd);
}

// Format 1: the named databases "images" and "meta", the format tag checked, the stored shape read (and compared
// with the wanted one), in one read-only transaction whose commit keeps the dbi handles open.
MDB_dbi open_v1_databases(const std::string& table, const std::string& path, MDB_env* env, Shape& shape,
                          const std::optional<Shape>& wanted) {
  MDB_txn* raw_txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &raw_txn);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_begin", rc);
  TxnPtr txn(raw_txn);
  MDB_dbi images = 0;
  MDB_dbi meta = 0;
  rc = mdb_dbi_open(txn.get(), lmdb_format::v1_images_db, 0, &images);
  if (rc == MDB_SUCCESS) rc = mdb_dbi_open(txn.get(), lmdb_format::v1_meta_db, 0, &meta);
  if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
    throw Error("table " + table + ": '" + path +
                    "' is an LMDB file but not an imgstore store (no 'images' and 'meta' databases)",
                ErrorKind::cantopen);
  }
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_dbi_open", rc);
  const std::string format = get_meta(txn.get(), meta, "format");
  if (format != lmdb_format::v1_format_tag) {
    throw Error("table " + table + ": '" + path + "' has format '" + format + "'; expected '" +
                    lmdb_format::v1_format_tag + "' (a single-file store)",
                ErrorKind::corrupt);
  }
  shape = parse_shape(get_meta(txn.get(), meta, "shape"), "table " + table + ": stored shape");
  rc = mdb_txn_commit(txn.release());
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_commit", rc);
  if (wanted && *wanted != shape) throw shape_mismatch(table, *wanted, path, shape);
  return images;
}

std::shared_ptr<Env> open_v1(const std::string& table, const Layout& layout, const struct stat& st,
                             const std::optional<Shape>& wanted) {
  check_meta_pages(table, layout.data, static_cast<std::uint64_t>(st.st_size));
  UndoCreatedLock undo(layout.lock);  // declared before env: it runs after a failed open has closed the environment
  int read_only = 0;
  EnvPtr env = open_existing_env(table, layout, static_cast<std::size_t>(st.st_size), read_only);
  Shape shape;
  const MDB_dbi images = open_v1_databases(table, layout.store, env.get(), shape, wanted);
  const auto id = data_file_id(env.get());
  if (!id) fail(table, layout.store, "mdb_env_get_fd", EBADF);
  undo.keep();
  return std::make_shared<Env>(std::move(env), layout, *id, shape, images, read_only);
}

// Format 2: the shape its .imgstore records (compared with the wanted one).
Shape read_description(const std::string& table, const Layout& layout, const std::optional<Shape>& wanted) {
  const std::string what = "table " + table + ": '" + layout.meta() + "'";
  std::vector<std::uint8_t> text;
  try {
    read_whole(layout.meta(), text, "table " + table + ": the store's description");
  } catch (const Error& e) {
    if (::access(layout.meta().c_str(), F_OK) == 0) throw;
    throw Error("table " + table + ": '" + layout.store + "' is an LMDB environment but not an imgstore store (no " +
                    lmdb_format::meta_file + " reading '" + lmdb_format::format_tag + "' and its shape)",
                ErrorKind::cantopen);
  }
  const Shape shape = lmdb_format::parse_meta({reinterpret_cast<const char*>(text.data()), text.size()}, what);
  if (wanted && *wanted != shape) throw shape_mismatch(table, *wanted, layout.store, shape);
  return shape;
}

// Format 2's images: LMDB's main database, opened in a read-only transaction whose commit keeps the handle.
MDB_dbi open_main_database(const std::string& table, const std::string& path, MDB_env* env) {
  MDB_txn* raw_txn = nullptr;
  int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &raw_txn);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_begin", rc);
  TxnPtr txn(raw_txn);
  MDB_dbi images = 0;
  rc = mdb_dbi_open(txn.get(), nullptr, 0, &images);
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_dbi_open", rc);
  rc = mdb_txn_commit(txn.release());
  if (rc != MDB_SUCCESS) fail(table, path, "mdb_txn_commit", rc);
  return images;
}

// One attempt at opening a format-2 store; nullptr when a compaction swapped the directory while LMDB opened its
// lock file and its data file (the two might then be of different stores): the caller tries again.
std::shared_ptr<Env> try_open_v2(const std::string& table, const Layout& layout, const struct stat& st,
                                 const std::optional<Shape>& wanted) {
  const auto directory = file_id(layout.store);
  check_meta_pages(table, layout.data, static_cast<std::uint64_t>(st.st_size));
  const Shape shape = read_description(table, layout, wanted);
  UndoCreatedLock undo(layout.lock);  // declared before env: it runs after a failed open has closed the environment
  int read_only = 0;
  EnvPtr env = open_existing_env(table, layout, static_cast<std::size_t>(st.st_size), read_only);
  const auto id = data_file_id(env.get());
  if (!id || file_id(layout.store) != directory || file_id(layout.data) != id) return nullptr;
  const MDB_dbi images = open_main_database(table, layout.store, env.get());
  undo.keep();
  return std::make_shared<Env>(std::move(env), layout, *id, shape, images, read_only);
}

// Makes a format-2 store at `path`, whole or not at all (lmdb_format.hpp): the environment and its description
// in a temporary directory beside it, synced, then renamed into place unless something is there by then (another
// process made it first: its store is the one opened).
void make_store(const std::string& table, const std::string& path, const Shape& shape) {
  const std::string what = "table " + table + ": making the store '" + path + "'";
  remove_abandoned_temporaries(path);
  std::optional<Temporary> temp = Temporary::make(new_store_name(path), Temporary::Kind::directory, what);
  if (!temp) throw Error(what + ": its temporary name is taken", ErrorKind::busy);
  try {
    const Layout made = Layout::of(Version::v2, temp->path());
    {
      int rc = 0;
      const EnvPtr env = create_env(table, made, 0, 0, rc);  // writes data.mdb's two meta pages
      if (!env) fail(table, path, "mdb_env_open", rc);
    }
    test_hooks::lmdb_kill_point("make-env");
    fsync_path(made.data, what);
    write_new_synced(made.meta(), lmdb_format::meta_text(shape), what);
    fsync_path(made.store, what);
    test_hooks::lmdb_kill_point("make-before-rename");
    const int err = rename2(made.store, path, RENAME_NOREPLACE);
    if (err == EEXIST) {
      temp->remove();
      return;
    }
    if (err != 0) throw_errno(what + ": cannot rename '" + made.store + "' to '" + path + "'", err);
    temp->release();
    fsync_path(parent_of(path), what);
  } catch (...) {
    temp->remove();
    throw;
  }
}

}  // namespace

// mdb_env_open on the layout's files, its map reserved as wanted_map_size() says (lmdb_env.hpp). Format 1 is
// MDB_NOSUBDIR (the path is the data file, its lock file the path plus "-lock"), with its two named databases;
// format 2 LMDB's default, a directory, with only the main database. MDB_NOTLS: a read snapshot is not tied to
// its thread, so several cursors in one thread each have one.
EnvPtr create_env(const std::string& table, const Layout& layout, std::size_t file_size, unsigned flags, int& rc) {
  const bool v1 = layout.version == Version::v1;
  // The reservation is address space; where it is short (ulimit -v, many stores in one process) mmap says
  // ENOMEM and a smaller map is tried, down to the least the file needs.
  const std::size_t least = round_up(std::max(min_map_size(), file_size * 2), kMiB);
  for (std::size_t map = round_up(wanted_map_size(file_size), kMiB);; map = std::max(least, map / 2)) {
    MDB_env* raw_env = nullptr;
    rc = mdb_env_create(&raw_env);
    if (rc != MDB_SUCCESS) fail(table, layout.store, "mdb_env_create", rc);
    EnvPtr env(raw_env);
    mdb_env_set_maxdbs(env.get(), v1 ? 4 : 0);
    mdb_env_set_maxreaders(env.get(), 512);
    mdb_env_set_mapsize(env.get(), map);
    rc = mdb_env_open(env.get(), layout.store.c_str(), (v1 ? MDB_NOSUBDIR : 0u) | MDB_NOTLS | flags, 0664);
    if (rc == ENOMEM && map > least) continue;
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) throw_not_lmdb(table, layout.data, rc);
    if (rc != MDB_SUCCESS && rc != EROFS && rc != EACCES) fail(table, layout.store, "mdb_env_open", rc);
    return rc == MDB_SUCCESS ? std::move(env) : EnvPtr();
  }
}

// Opens the environment, making the store when nothing is at `path`, and checks it is one of ours.
std::shared_ptr<Env> open_env(const std::string& table, const std::string& path,
                              const std::optional<Shape>& wanted, OpenMode mode) {
  std::optional<Layout> layout = find_layout(table, path);
  if (!layout) {
    if (!wanted || mode != OpenMode::create_if_missing) throw_missing_store(table, path, mode);
    make_store(table, path, *wanted);
    layout = find_layout(table, path);
    if (!layout) throw Error("table " + table + ": the store '" + path + "' vanished as it was made", ErrorKind::cantopen);
  } else if (mode != OpenMode::inspect) {
    remove_abandoned_temporaries(path);  // a crashed compaction's or maker's
  }

  auto& reg = registry();
  const std::lock_guard lock(reg.mutex());
  for (int attempt = 0; attempt < 100; ++attempt) {
    struct stat st{};
    if (::stat(layout->data.c_str(), &st) != 0) throw_errno("table " + table + ": cannot open '" + layout->data + "'", errno);
    if (auto env = find_open_env(reg, st, table, path, wanted)) return env;
    auto env = layout->version == Version::v1 ? open_v1(table, *layout, st, wanted) : try_open_v2(table, *layout, st, wanted);
    if (!env) continue;  // swapped by a compaction meanwhile: the new one
    struct stat opened{};
    opened.st_dev = env->id().dev;
    opened.st_ino = env->id().ino;
    reg.add(opened, env);
    return env;
  }
  throw Error("table " + table + ": the store '" + path + "' keeps being swapped (compacted) while it is opened",
              ErrorKind::busy);
}

std::size_t open_environments() { return registry().open_count(); }

std::shared_ptr<Env> claim_current_writer(const std::string& table, const std::string& path,
                                          const std::optional<Shape>& wanted, std::shared_ptr<Env> env,
                                          std::chrono::milliseconds timeout) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (!env || env->replaced()) env = open_env(table, path, wanted, OpenMode::must_exist);
    if (env->claim_writer(table, timeout)) return env;
    env.reset();  // swapped between the look and the lock: the file the path names now
  }
  throw Error("table " + table + ": the store '" + path + "' keeps being swapped (compacted) under this writer",
              ErrorKind::busy);
}

UnlockedStore open_v1_unlocked(const std::string& table, const Layout& layout, const std::optional<Shape>& wanted) {
  struct stat st{};
  if (::stat(layout.data.c_str(), &st) != 0) throw_errno("table " + table + ": cannot open '" + layout.data + "'", errno);
  check_meta_pages(table, layout.data, static_cast<std::uint64_t>(st.st_size));
  UnlockedStore store;
  int rc = 0;
  store.env = create_env(table, layout, static_cast<std::size_t>(st.st_size), MDB_RDONLY | MDB_NOLOCK, rc);
  if (!store.env) fail(table, layout.store, "mdb_env_open", rc);
  store.images = open_v1_databases(table, layout.store, store.env.get(), store.shape, wanted);
  return store;
}

void with_no_env_open(const std::string& table, const std::string& data, const std::function<void()>& work) {
  auto& reg = registry();
  const std::lock_guard lock(reg.mutex());
  struct stat st{};
  if (::stat(data.c_str(), &st) == 0 && reg.find(st)) {
    throw Error("table " + table + ": '" + data + "' is open in this process (a table over it); a single-file store "
                "(format 1) is compacted only when nothing has it open",
                ErrorKind::busy);
  }
  work();
}

bool Env::claim_writer(const std::string& table, std::chrono::milliseconds timeout) {
  if (read_only_ != 0) throw_read_only(table, path(), read_only_);
  const bool claimed = wait_for([&] {
    bool expected = false;
    return writing_.compare_exchange_strong(expected, true);
  }, timeout);
  if (!claimed) throw_writer_busy(table, path(), "another connection in this process", timeout);
  try {
    WriterLock lock(LockSpot{layout_.data}, timeout, "table " + table);  // byte 0 of the data file
    if (!lock) throw_writer_busy(table, path(), "another process", timeout);
    // The lock is on the file the path named when it was opened. A compaction swaps the file while it holds
    // the lock, so once this process holds it the path keeps naming the file locked; both must be this
    // environment's, or a commit would go into a file nobody reads any more.
    if (file_id(lock.fd()) != id_ || file_id(layout_.data) != id_) {
      writing_.store(false);
      return false;
    }
    writer_lock_ = std::move(lock);
  } catch (...) {
    writing_.store(false);
    throw;
  }
  return true;
}

void Env::release_writer() noexcept {
  writer_lock_.release();
  writing_.store(false);
}

}  // namespace imgstore::lmdb
