// Compaction of an lmdb store: LMDB never gives pages back to the file system, so a store that had many rows
// deleted or replaced keeps its size; this rewrites it without free pages (mdb_env_copyfd2, MDB_CP_COMPACT) and
// swaps the copy in.
//
// Format 2 (a directory), beside other processes:
//   1. the store's writer claim (this process's write slot and the lock on byte 0 of data.mdb, lmdb_env.hpp),
//      and an LMDB write transaction, so that neither an imgstore writer nor a program using LMDB alone commits
//      while the copy is taken: every committed row is in it;
//   2. the compacted copy made in x.lmdb.imgstore-compact/ (held with a flock, lmdb_layout.hpp): data.mdb written and
//      fsynced, .imgstore written and fsynced, the directory fsynced;
//   3. renameat2(RENAME_EXCHANGE) of the two directories, the parent fsynced: the commit point;
//   4. the transaction aborted and the writer claim given back; the old store (now at the temporary's name)
//      removed.
// A kill before 3 leaves the old store and an abandoned copy; after it, the compacted store and the abandoned
// old one; the next open or compaction removes the leftover. A reader in another process keeps reading its
// snapshot of the old files (they stay open while unlinked) and moves to the new ones at its next statement
// (Env::replaced). A writer in another process waits for the lock on the old data.mdb; once it has it, it
// finds that the path names another file and claims the new one instead (Env::claim_writer), so it never
// commits into the old file.
//
// Format 1 (one file, x.lmdb and x.lmdb-lock) cannot be swapped beside other processes: its lock file is shared by
// whatever data file the path names, and LMDB keeps the last transaction's id there, by which readers pick the
// data file's meta page. So it is compacted only when no process has it open, which holding an exclusive fcntl
// lock on the lock file's first byte proves (every LMDB process holds a shared one there); an opener waits in
// mdb_env_open meanwhile. The copy (x.lmdb.imgstore-compact) is renamed over the data file. Its two meta pages are made
// the same snapshot, so that it reads right whichever one the lock file's transaction id picks: the id may be
// the old file's in the lock file when a waiting opener goes on.

#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

#include "args.hpp"
#include "busy.hpp"
#include "checksum.hpp"
#include "disk_usage.hpp"
#include "lmdb_env.hpp"
#include "lmdb_layout.hpp"
#include "lmdb_store.hpp"
#include "test_hooks.hpp"
#include "thread_pool.hpp"

namespace imgstore {

namespace {

using namespace lmdb;

// The writer claim of `env`, given back by release() or when this goes.
class WriterClaim {
 public:
  explicit WriterClaim(Env& env) : env_(&env) {}
  WriterClaim(const WriterClaim&) = delete;
  WriterClaim& operator=(const WriterClaim&) = delete;
  ~WriterClaim() { release(); }
  void release() noexcept {
    if (env_ != nullptr) std::exchange(env_, nullptr)->release_writer();
  }

 private:
  Env* env_;
};

std::uint64_t allocated(const std::string& path) { return disk_usage(path).allocated; }

// The compacted copy of `env`'s store into the file `fd`, synced.
void copy_compacted(const std::string& table, MDB_env* env, const std::string& store, int fd, const std::string& to,
                    const std::string& what) {
  const int rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
  if (rc != MDB_SUCCESS) fail(table, store, "mdb_env_copyfd2 (compacting)", rc);
  test_hooks::lmdb_kill_point("compact-copied");
  fsync_or_throw(fd, to, what);
}

Compacted compact_v2(const std::string& table, const std::string& path, const std::optional<Shape>& shape,
                     std::chrono::milliseconds timeout) {
  const std::string what = "table " + table + ": compacting '" + path + "'";
  const std::shared_ptr<Env> env = claim_current_writer(table, path, shape, nullptr, timeout);
  const Layout layout = Layout::of(Version::v2, path);  // by the real path: the environment may know a symlink's
  Compacted result;
  {
    WriterClaim claim(*env);
    Env::Write write = env->begin_write(table);  // LMDB's writer mutex too: no commit by anyone until the swap
    MDB_stat stat{};
    mdb_stat(write.txn.get(), env->images(), &stat);
    result.rows = stat.ms_entries;
    result.bytes_before = allocated(layout.store);
    std::optional<Temporary> temp = Temporary::make(layout.store + lmdb_format::compact_suffix,
                                                    Temporary::Kind::directory, what);
    if (!temp) throw Error(what + ": '" + layout.store + lmdb_format::compact_suffix + "' is held by another process", ErrorKind::busy);
    const Layout copy = Layout::of(Version::v2, temp->path());
    try {
      test_hooks::lmdb_kill_point("compact-made");
      {
        const Fd fd = open_or_throw(copy.data, O_WRONLY | O_CREAT | O_EXCL, what, 0664);
        copy_compacted(table, env->get(), layout.store, fd.get(), copy.data, what);
      }
      write_new_synced(copy.meta(), lmdb_format::meta_text(env->shape()), what);
      fsync_path(copy.store, what);
      test_hooks::lmdb_kill_point("compact-before-swap");
      if (const int err = rename2(layout.store, copy.store, RENAME_EXCHANGE); err != 0) {
        throw_errno(what + ": cannot swap '" + copy.store + "' and '" + layout.store + "'", err);
      }
    } catch (...) {
      temp->remove();
      throw;
    }
    fsync_path(parent_of(layout.store), what);
    test_hooks::lmdb_kill_point("compact-swapped");
    write.txn.reset();  // aborted: it wrote nothing
    write.live = Env::Live();
    claim.release();  // a writer that waited for the old file's lock finds the path naming the new one
    ::unlink(copy.data.c_str());  // the old store's, now at the temporary's name
    test_hooks::lmdb_kill_point("compact-removing");
    temp->remove();
  }
  fsync_path(parent_of(layout.store), what);
  result.bytes_after = allocated(layout.store);
  return result;
}

// Makes meta page 0 of a compacted format-1 copy the same snapshot as meta page 1 (the copy's newest; page 0 is
// left empty by mdb_env_copyfd2), keeping its older transaction id: the databases' records and the last page.
// The offsets are LMDB's documented meta page layout (lmdb_env.cpp, check_meta_pages).
void same_snapshot_in_both_meta_pages(int fd, const std::string& path, const std::string& what) {
  constexpr std::size_t kHeader = 16;
  constexpr std::size_t kDbs = 24;       // mm_dbs[2], 48 bytes each, then mm_last_pg (8)
  constexpr std::size_t kTxnid = 128;    // mm_txnid, not copied
  std::uint32_t page_size = 0;
  if (::pread(fd, &page_size, 4, kHeader + kDbs) != 4 || page_size < 512 || page_size > (1u << 16)) {
    throw Error(what + ": the copy '" + path + "' has no readable page size", ErrorKind::corrupt);
  }
  unsigned char snapshot[kTxnid - kDbs];
  if (::pread(fd, snapshot, sizeof snapshot, page_size + kHeader + kDbs) != static_cast<ssize_t>(sizeof snapshot) ||
      ::pwrite(fd, snapshot, sizeof snapshot, kHeader + kDbs) != static_cast<ssize_t>(sizeof snapshot)) {
    throw_errno(what + ": cannot write the meta page of '" + path + "'", errno);
  }
}

Compacted compact_v1(const std::string& table, const Layout& layout, const std::optional<Shape>& shape) {
  const std::string what = "table " + table + ": compacting '" + layout.store + "'";
  Compacted result;
  with_no_env_open(table, layout.data, [&] {
    const Fd lock = open_or_throw(layout.lock, O_RDWR | O_CREAT, what, 0664);
    struct flock first{};
    first.l_type = F_WRLCK;
    first.l_whence = SEEK_SET;
    first.l_len = 1;
    if (::fcntl(lock.get(), F_SETLK, &first) != 0) {
      throw Error(what + ": another process has it open; a single-file store (format 1) is compacted only when "
                      "nothing else has it open (a store in format 2, a directory, is compacted beside its readers "
                      "and writers: INSERT INTO new SELECT * FROM old converts)",
                  ErrorKind::busy);
    }
    const UnlockedStore store = open_v1_unlocked(table, layout, shape);
    {
      MDB_txn* raw = nullptr;
      if (const int rc = mdb_txn_begin(store.env.get(), nullptr, MDB_RDONLY, &raw); rc != MDB_SUCCESS) fail(table, layout.store, "mdb_txn_begin", rc);
      const TxnPtr txn(raw);
      MDB_stat stat{};
      mdb_stat(txn.get(), store.images, &stat);
      result.rows = stat.ms_entries;
    }
    result.bytes_before = allocated(layout.data);
    std::optional<Temporary> temp = Temporary::make(layout.store + lmdb_format::compact_suffix, Temporary::Kind::file, what);
    if (!temp) throw Error(what + ": '" + layout.store + lmdb_format::compact_suffix + "' is held by another process", ErrorKind::busy);
    try {
      test_hooks::lmdb_kill_point("compact-made");
      copy_compacted(table, store.env.get(), layout.store, temp->fd(), temp->path(), what);
      same_snapshot_in_both_meta_pages(temp->fd(), temp->path(), what);
      fsync_or_throw(temp->fd(), temp->path(), what);
      test_hooks::lmdb_kill_point("compact-before-swap");
      if (::rename(temp->path().c_str(), layout.data.c_str()) != 0) {
        throw_errno(what + ": cannot rename '" + temp->path() + "' to '" + layout.data + "'", errno);
      }
    } catch (...) {
      temp->remove();
      throw;
    }
    temp->release();
    fsync_path(parent_of(layout.store), what);
    test_hooks::lmdb_kill_point("compact-swapped");
  });  // closing `lock` lets a waiting opener go on, to the new file
  result.bytes_after = allocated(layout.data);
  return result;
}

}  // namespace

Compacted compact_lmdb_store(const std::string& table, const std::vector<std::string>& args) {
  const Args parsed(table, {"path", "shape", "timeout", "threads", "verify"}, args);
  threads_argument(parsed);
  verify_argument(parsed);
  const std::string path = parsed.require("path");
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_store_shape(*text, "table " + table + ": shape");
  const auto timeout = timeout_argument(parsed);
  if (!find_layout(table, path)) throw_missing_store(table, path, OpenMode::must_exist);
  // The swap renames names: those of the store itself, not of a symlink to it.
  std::error_code ec;
  const std::string real = std::filesystem::canonical(path, ec).string();
  if (ec) throw Error("table " + table + ": cannot resolve the store's path '" + path + "': " + ec.message(), ErrorKind::cantopen);
  const std::optional<Layout> layout = find_layout(table, real);
  if (!layout) throw_missing_store(table, path, OpenMode::must_exist);
  remove_abandoned_temporaries(layout->store);
  if (layout->version == Version::v1) return compact_v1(table, *layout, shape);
  return compact_v2(table, real, shape, timeout);
}

}  // namespace imgstore
