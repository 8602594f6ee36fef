// The LMDB environment of an lmdb store: one per data file per process (a registry by device+inode, as LMDB
// forbids opening a file twice in a process), the map that grows by itself, the write slot, read snapshots,
// and opening a store safely (its meta pages checked before LMDB maps it; a failed open leaves nothing behind; a
// new store made whole beside its path and renamed into place). lmdb_store.cpp builds the Store on it,
// lmdb_compact.cpp compacts it; lmdb_format.hpp is the layout, lmdb_layout.hpp where its files are.
//
// A store's path may come to hold another data file while this process has the old one open: a compaction
// (lmdb_compact.cpp) swaps in a compacted copy. The old environment stays consistent (nobody writes it any more)
// for the snapshots already reading it, but this process must see the new one from its next transaction on: a
// table asks replaced() before each statement and then reopens, and the writer claim checks, under the writer
// lock, that the file locked is this environment's, so no commit ever goes into a file that was swapped out.
//
// Map size: never set by the user. LMDB cannot grow the map inside a write transaction (mdb_env_set_mapsize
// is refused while one is open), so one statement can only use the map it started with. The map is therefore
// reserved as address space for everything the file system could hold: the file plus the free space of its
// file system (at least 1 GiB, twice the file; on 64-bit, at most 1 TiB per store so that many shards fit
// in the 128 TiB of user address space). A statement fails for lack of map only when it would fail for lack
// of disk. It is re-checked before every write transaction (the disk may have been enlarged), and other
// processes adopt a grown map on MDB_MAP_RESIZED.
#pragma once

#include <lmdb.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <sys/statvfs.h>
#include <utility>

#include "busy.hpp"
#include "error.hpp"
#include "lmdb_layout.hpp"
#include "owner_process.hpp"
#include "posix_file.hpp"
#include "shape.hpp"
#include "store.hpp"
#include "writer_lock.hpp"

namespace imgstore::lmdb {

ErrorKind kind_of(int rc);
// Throws Error naming the table, the call, the file and LMDB's message (a full disk said as such).
[[noreturn]] void fail(const std::string& table, const std::string& path, const char* call, int rc);

// LMDB forbids using an environment, or anything of it, after fork(). A forked child whose copy of the parent's
// tables goes (Python dropping a connection the parent opened) leaves the parent's objects alone: closing the
// environment or ending a transaction would clear the parent's reader slots and release its writer mutex in the
// shared lock file. So each handle remembers the process that made it, and only that one closes it; in a child
// it is leaked, deliberately.
struct EnvClose {
  OwnerProcess owner;
  void operator()(MDB_env* env) const noexcept {
    if (owner.is_this_process()) mdb_env_close(env);
  }
};
struct TxnAbort {
  OwnerProcess owner;
  void operator()(MDB_txn* txn) const noexcept {
    if (owner.is_this_process()) mdb_txn_abort(txn);
  }
};
struct CursorClose {
  OwnerProcess owner;
  void operator()(MDB_cursor* cursor) const noexcept {
    if (owner.is_this_process()) mdb_cursor_close(cursor);
  }
};
using EnvPtr = std::unique_ptr<MDB_env, EnvClose>;
using TxnPtr = std::unique_ptr<MDB_txn, TxnAbort>;
using CursorPtr = std::unique_ptr<MDB_cursor, CursorClose>;

inline constexpr std::size_t kMiB = std::size_t{1} << 20;
// The map is address space, not disk (the file grows only as pages are written), so it is reserved large:
// kMaxReserve at least, and twice the file beyond that, growing geometrically with the file and never with
// the free space of the moment. A transaction that still fills it fails with SQLITE_FULL and the map grows
// before the next one. (A test build lowers the least: test_hooks.hpp.)
inline constexpr std::size_t kMaxReserve = sizeof(void*) >= 8 ? std::size_t{1} << 40 : std::size_t{1} << 30;
std::size_t min_map_size();
// The map wanted for a data file of `used` bytes: max(min_map_size(), 2 * used).
std::size_t wanted_map_size(std::size_t used);
inline std::size_t round_up(std::size_t n, std::size_t unit) { return (n + unit - 1) / unit * unit; }

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

  // read_only: the errno (EROFS, EACCES) that made the environment open MDB_RDONLY, or 0. id: the data file's.
  Env(EnvPtr env, Layout layout, FileId id, Shape shape, MDB_dbi images, int read_only)
      : env_(std::move(env)), layout_(std::move(layout)), id_(id), shape_(shape), images_(images),
        read_only_(read_only) {
    spare_readers_.reserve(kSpareReaders);  // so that recycle() never allocates
  }

  MDB_env* get() const { return env_.get(); }
  // Opened by this process, not inherited across fork() (EnvClose).
  bool here() const { return env_.get_deleter().owner.is_this_process(); }
  // The store's path, for messages; its data file, where an image is damaged.
  const std::string& path() const { return layout_.store; }
  const std::string& data_path() const { return layout_.data; }
  const Layout& layout() const { return layout_; }
  const FileId& id() const { return id_; }
  Version version() const { return layout_.version; }
  const Shape& shape() const { return shape_; }
  MDB_dbi images() const { return images_; }
  bool read_only() const { return read_only_ != 0; }
  // The store's path now names another data file (a compaction swapped it): reopen. A path that names nothing
  // (the store deleted) is not a replacement: this environment stays, as an open file outlives its name.
  bool replaced() const {
    const auto now = file_id(layout_.data);
    return now && *now != id_;
  }

  // A read-only snapshot, recycled from a small pool (mdb_txn_renew is cheaper than begin).
  Snapshot take_reader(const std::string& table) {
    if (TxnPtr txn = spare_reader()) {
      Live live(*this);
      const int rc = mdb_txn_renew(txn.get());
      if (rc == MDB_SUCCESS) return Snapshot(*this, std::move(live), std::move(txn));
      if (rc != MDB_MAP_RESIZED) fail(table, path(), "mdb_txn_renew", rc);
    }  // not counted any more: begin_txn may adopt a grown map only while this process has nothing live
    Write begun = begin_txn(table, MDB_RDONLY, "mdb_txn_begin (read)");
    return Snapshot(*this, std::move(begun.live), std::move(begun.txn));
  }

  // Claims the store's one writer: first this process's write slot (LMDB's writer lock would block this very
  // thread forever if a second connection in the same process asked for it), then, across processes, an OFD
  // lock on the data file, so a writer in another process means waiting `timeout` and SQLITE_BUSY instead of
  // blocking in mdb_txn_begin. A store opened read-only refuses at once. False (nothing held) when the data file
  // at the store's path, once locked, is not this environment's: it was swapped out, reopen and claim again.
  bool claim_writer(const std::string& table, std::chrono::milliseconds timeout);
  void release_writer() noexcept;

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
    if (!here()) return;  // the parent's reader slot, not to be reset by a child (EnvClose)
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
      if (rc != MDB_MAP_RESIZED || attempt > 0) fail(table, path(), call, rc);
      const std::lock_guard lock(mutex_);
      if (live_ != 0) {
        throw Error("table " + table + ": another process grew the map of '" + path() +
                        "' while this one is reading it; finish the open queries and try again",
                    ErrorKind::busy);
      }
      const int resized = mdb_env_set_mapsize(env_.get(), 0);
      if (resized != MDB_SUCCESS) fail(table, path(), "mdb_env_set_mapsize", resized);
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
    const std::size_t hint = grow_hint_.exchange(0);
    std::size_t target = wanted_map_size(used);
    if (hint != 0) target = std::max({target, info.me_mapsize * 4, used + 4 * hint});
    target = round_up(target, kMiB);
    if (target <= info.me_mapsize) return;
    const int rc = mdb_env_set_mapsize(env_.get(), target);
    if (rc != MDB_SUCCESS) fail(table, path(), "mdb_env_set_mapsize", rc);
  }

  EnvPtr env_;
  const Layout layout_;
  const FileId id_;
  const Shape shape_;
  const MDB_dbi images_;
  std::mutex mutex_;
  int live_ = 0;  // live transactions of this process (Live objects)
  const int read_only_;
  std::atomic<bool> writing_{false};
  WriterLock writer_lock_;  // byte 0 of the data file, while this process writes
  std::atomic<std::size_t> grow_hint_{0};  // bytes a failed transaction wanted to write
  std::vector<TxnPtr> spare_readers_;
};

// The environment of `path`, shared by every table of this process on it; a new store (format 2) made with
// `wanted` when nothing is there and `mode` allows.
std::shared_ptr<Env> open_env(const std::string& table, const std::string& path, const std::optional<Shape>& wanted,
                              OpenMode mode);
// How many environments this process holds open.
std::size_t open_environments();
// The environment of the data file `path` names now, its writer claimed (Env::claim_writer): `env` (the caller's,
// or none) unless a compaction swapped the file, then the new file's. Error(busy) if swaps keep coming.
std::shared_ptr<Env> claim_current_writer(const std::string& table, const std::string& path,
                                          const std::optional<Shape>& wanted, std::shared_ptr<Env> env,
                                          std::chrono::milliseconds timeout);
// Runs `work` with no environment of this process open on the data file `data`, and none opened meanwhile (the
// registry held); Error(busy) naming the table when one is open. Format 1's compaction needs the store closed.
void with_no_env_open(const std::string& table, const std::string& data, const std::function<void()>& work);
// Format 1, for its compaction: the store opened read-only without its lock file (MDB_NOLOCK: the caller holds
// the lock file exclusively, so no process has it open and none writes it), its format and shape checked.
struct UnlockedStore {
  EnvPtr env;
  MDB_dbi images = 0;
  Shape shape;
};
UnlockedStore open_v1_unlocked(const std::string& table, const Layout& layout, const std::optional<Shape>& wanted);
// Makes an environment handle for `layout`'s files, opened with `flags` (plus MDB_NOTLS, and MDB_NOSUBDIR for
// format 1); an empty pointer and rc when LMDB refused with EROFS or EACCES (the caller tries read-only).
EnvPtr create_env(const std::string& table, const Layout& layout, std::size_t file_size, unsigned flags, int& rc);

}  // namespace imgstore::lmdb
