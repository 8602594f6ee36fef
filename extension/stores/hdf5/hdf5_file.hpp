// The HDF5 file of an hdf5 store: its layout (documented below, readable with h5py or h5dump without our
// code), the HDF5 handles, the published committed state, opening, creating and recovering. hdf5_store.cpp
// builds the Store (transactions, cursors) on it; hdf5_open.cpp opens and creates the file, hdf5_file.cpp keeps
// it (registry, committed states, commits, recovery).
//
// The layout itself is hdf5_format.hpp. A scan goes in id order through an in-memory id -> row index built
// from /ids at open (8 bytes a row), so a point read never scans.
//
// Every HDF5 call runs under one process-wide mutex (Debian builds libhdf5 thread-safe, H5_HAVE_THREADSAFE, but
// that is one global lock inside it: we do not rely on it, and worker threads never call HDF5). HDF5's own error
// printing is switched off and its error stack becomes our message. A file is opened once per process (a
// registry by device+inode), read-only until a transaction writes: version 2 files for SWMR reading without
// HDF5's file lock, then for SWMR writing under our writer lock; version 1 files (and files made by other
// tools) RDONLY under HDF5's whole-file lock, and RDWR only to roll back a journal an older imgstore left
// (hdf5_format.hpp): they are read, never written (a copy into a new store upgrades them).
#pragma once

#include <hdf5.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "busy.hpp"
#include "error.hpp"
#include "hdf5_format.hpp"
#include "owner_process.hpp"
#include "posix_file.hpp"
#include "shape.hpp"
#include "store.hpp"
#include "writer_lock.hpp"

namespace imgstore::hdf5 {

std::recursive_mutex& hdf5_mutex();
using Lock = std::lock_guard<std::recursive_mutex>;

// Throws Error(what + HDF5's error stack), of kind full or busy where the stack says so.
[[noreturn]] void fail(const std::string& what);

// An HDF5 identifier closed by the matching H5?close.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  // Forgets the identifier without closing it (a writer's handles inherited across fork, H5File::close).
  void leak() noexcept { id_ = H5I_INVALID_HID; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& what);
void checked(herr_t rc, const std::string& what);

struct Compression {
  int gzip = 0;  // 0: none, 1..9: deflate level
};
Compression parse_compression(const std::string& table, const std::string& text);

// One committed state of a file: what a statement reads, plus its own transaction's changes. Immutable once
// published: a commit publishes a new one, so a cursor that holds the old one never sees a commit halfway.
// The rows it names stay valid after later commits, which only append rows and change /ids and /labels.
struct Committed {
  using Index = std::map<std::int64_t, std::uint64_t>;
  std::uint64_t rows = 0;                       // committed row count
  std::uint64_t generation = ~std::uint64_t{0};  // version 2: /commit's generation it was read at (~0: never read)
  std::vector<std::int64_t> row_ids;            // per committed row; -1 deleted
  std::vector<std::int64_t> row_labels;         // per committed row
  Index index;                                  // live id -> row
  std::uint64_t images_end = 0;                 // where its last /images chunk ends in the file
                                                // (hdf5_file_end.hpp; 0: unchecked)
};

// After a file closes: HDF5 keeps the blocks it freed (chunk buffers, metadata) on its own free lists for
// reuse, up to about 40 MB, and glibc keeps freed heap; both go back to the system here, so that a connection
// that opens and drops many stores does not keep the memory of the largest ones it had.
void release_memory() noexcept;

// One open file per process, shared by every table on it.
class H5File {
 public:
  std::string path;
  Shape shape;
  std::uint64_t chunk_rows = 1;
  Hid file;
  Hid images;
  Hid labels;
  Hid ids;
  Hid commit;       // version 2: /commit
  int version = 1;  // of the file's format (hdf5_format.hpp): 2 = SWMR readers beside one writer
  WriterLock writer_lock;  // version 2: held while this process writes (writer_spot)
  // Version 2 readers: /commit's one chunk (allocated at creation, unfiltered, never moved) read with pread at
  // its file address: a statement's check for a new commit costs a 16-byte read instead of an H5Drefresh.
  Fd commit_fd;
  haddr_t commit_address = HADDR_UNDEF;
  int filters = 0;  // on /images
  int deflate = 0;  // the gzip level when deflate is /images' only filter (direct chunk I/O, hdf5_chunks.hpp)
  std::shared_ptr<const Committed> committed = std::make_shared<Committed>();
  bool writing = false;   // one transaction at a time per file
  bool left_open = false;  // an inherited writer's handles were left open (close)
  bool writable = false;  // opened read-write: only once a transaction writes (reading must not change the file)
  // The file as this process left it read-only after its last commit (mtime, size): unchanged at the next
  // transaction, its committed state need not be read again.
  std::optional<std::pair<std::int64_t, std::int64_t>> left_as;

  // The process whose HDF5 library opened the handles above. A child forked while they were open inherits them
  // with HDF5's metadata cache as it was at the fork. It may read through them (a SWMR reader refreshes what it
  // reads), but never writes through them: a write would allocate space and write metadata from that stale
  // copy, over what other processes committed since. Nor can it open the file a second time beside them (HDF5
  // hands a second open of a file the first one's state). So a child that writes first drops its copies and
  // opens the file itself (make_writable), which is safe for a SWMR reader's handles only: closing them closes
  // the child's copy of the descriptor and nothing else (no write, no lock: strace, HDF5 1.10.8). A writer's
  // handles (the parent forked mid-transaction) are never closed in the child (closing flushes the parent's
  // unfinished state and clears the open-for-write flags): the child can only read the store.
  OwnerProcess opener;

  ~H5File() {
    const Lock lock(hdf5_mutex());
    close();
    release_memory();
  }

  // Open for writing in the process that forked this one (see opener); once its handles are left, the file
  // stays so (they remain open in HDF5).
  bool inherited_writer() const { return !opener.is_this_process() && (writable || left_open); }

  // Closes the handles, except an inherited writer's, which are left open (see opener).
  void close() {
    const bool leave = inherited_writer();
    left_open = left_open || leave;
    for (Hid* h : {&commit, &ids, &labels, &images, &file}) {
      if (leave) {
        h->leak();
      } else {
        h->reset();
      }
    }
    writable = false;
  }

  // Version 2: byte kWriterLockByte of the .h5 file, which HDF5's own flock does not see (hdf5_format.hpp).
  LockSpot writer_spot() const { return {path, LockSpot::Kind::file_byte, kWriterLockByte}; }

  std::string where(const std::string& table) const { return "table " + table + ": '" + path + "'"; }

  std::vector<hsize_t> dims(std::uint64_t n) const {
    return {n, shape.height, shape.width, shape.channels};
  }

  // Reads or writes rows [row0, row0 + n) of a dataset (rank 4 images, or rank 1).
  void transfer(hid_t dset, bool write, std::uint64_t row0, std::uint64_t n, hid_t memtype, void* data,
                const std::string& what) const {
    const bool is_images = dset == images.get();
    const int rank = is_images ? 4 : 1;
    std::vector<hsize_t> start(static_cast<std::size_t>(rank), 0);
    std::vector<hsize_t> count = is_images ? dims(n) : std::vector<hsize_t>{n};
    start[0] = row0;
    const Hid fspace = checked(H5Dget_space(dset), H5Sclose, what);
    checked(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), what);
    const Hid mspace = checked(H5Screate_simple(rank, count.data(), nullptr), H5Sclose, what);
    if (write) {
      checked(H5Dwrite(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
    } else {
      checked(H5Dread(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
    }
  }

  std::uint64_t extent(hid_t dset, const std::string& what) const {
    const Hid space = checked(H5Dget_space(dset), H5Sclose, what);
    hsize_t d[4] = {0, 0, 0, 0};
    if (H5Sget_simple_extent_dims(space.get(), d, nullptr) < 0) fail(what);
    return d[0];
  }

  void set_rows(std::uint64_t n, const std::string& what) const {
    checked(H5Dset_extent(images.get(), dims(n).data()), what);
    const hsize_t one[1] = {n};
    checked(H5Dset_extent(labels.get(), one), what);
    checked(H5Dset_extent(ids.get(), one), what);
  }

  void write_rows_attribute(std::uint64_t n, const std::string& what) const {
    const Hid attr = checked(H5Aopen(file.get(), "rows", H5P_DEFAULT), H5Aclose, what);
    const std::uint64_t value = n;
    checked(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &value), what);
  }

  // Version 2: /commit = [generation, rows]. A reader refreshes it first (H5Drefresh: SWMR readers see a
  // dataset's new data and extent only after it).
  CommitWord read_commit(const std::string& what) const {
    if (!writable && commit_fd && commit_address != HADDR_UNDEF) {
      // The writer writes /commit with one pwrite; a torn read can pair the new generation with the old row
      // count, which the seqlock's second read of /commit catches (one_commit compares both words).
      std::uint8_t b[16];
      if (::pread(commit_fd.get(), b, sizeof b, static_cast<off_t>(commit_address)) == static_cast<ssize_t>(sizeof b)) {
        const auto le = [&](int at) {
          std::uint64_t x = 0;
          for (int i = 7; i >= 0; --i) x = (x << 8) | b[at + i];
          return x;
        };
        return {le(0), le(8)};
      }
    }
    if (!writable) checked(H5Drefresh(commit.get()), what);
    std::uint64_t v[2] = {0, 0};
    checked(H5Dread(commit.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), what);
    return {v[0], v[1]};
  }
  void write_commit(std::uint64_t generation, std::uint64_t rows, const std::string& what) const {
    const std::uint64_t v[2] = {generation, rows};
    checked(H5Dwrite(commit.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), what);
  }

  // HDF5 cannot undo a write that failed half-way for want of space: its metadata stays half-updated and the
  // file can read back wrong. So every write first checks that the file system has room for it, with a margin
  // for HDF5's own metadata, and refuses cleanly, before writing anything, when it has not.
  void ensure_space(std::uint64_t bytes, const std::string& what) const {
    struct statvfs fs{};
    if (::statvfs(path.c_str(), &fs) != 0) return;
    const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    const std::uint64_t needed = bytes + bytes / 8 + (2u << 20);
    if (free < needed) {
      throw Error(what + ": the file system is full (" + std::to_string(free) + " bytes free, this write needs about " +
                      std::to_string(needed) + "); the transaction was rolled back",
                  ErrorKind::full);
    }
  }

  // Flushes HDF5's buffers and makes them durable.
  void flush_and_sync(const std::string& what) const {
    checked(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), what);
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file.get(), H5P_DEFAULT, &handle) >= 0 && handle != nullptr) {
      if (::fsync(*static_cast<int*>(handle)) != 0) {
        throw Error(what + ": fsync failed: " + std::strerror(errno), errno == ENOSPC ? ErrorKind::full : ErrorKind::generic);
      }
    }
  }
};

// The open file of `path` (shared by every table of this process on it), created with `wanted` when missing
// and `mode` allows; an interrupted commit is rolled back first (not with OpenMode::inspect).
std::shared_ptr<H5File> open_file(const std::string& table, const std::string& path, const std::optional<Shape>& wanted,
                                  const Compression& compression, std::uint64_t chunk, OpenMode mode,
                                  std::chrono::milliseconds timeout = kBusyTimeout);
// Error(readonly) naming the table when `f` was opened by a process that forked this one (H5File::opener).
void refuse_inherited(const H5File& f, const std::string& table);
// Reopens the file read-write for a transaction's first write: takes the writer lock (Error busy after
// `timeout` while another process writes) and opens for SWMR writing. A version 1 file: Error readonly.
void make_writable(H5File& f, const std::string& table, std::chrono::milliseconds timeout = kBusyTimeout);
// After a transaction: back to read-only (version 2: SWMR reading, the writer lock released; version 1: so that
// other processes may open the file again, HDF5 locking it whole for a writer). If another process takes a
// version 1 file first, the file stays closed until ensure_open.
void make_readonly(H5File& f, const std::string& table) noexcept;
// Version 2, outside this process's transactions: reads the committed state again if another process committed
// since (a seqlock on /commit, hdf5_format.hpp), waiting up to `timeout` for a commit being applied.
void refresh_committed(H5File& f, const std::string& table, std::chrono::milliseconds timeout);
// Version 2: whether another process (or connection) holds the writer lock now.
bool writer_active(const H5File& f);
// Reopens (read-only) a file make_readonly left closed, waiting up to `timeout` for another process's writer.
void ensure_open(H5File& f, const std::string& table, std::chrono::milliseconds timeout);
// Writes a transaction's new committed state `next` (f.committed with the transaction's changes) and publishes
// it; the file is open read-write. New rows go past the committed count; the committed rows in `dirty`, which
// change in place, are journaled first (hdf5_journal.hpp), so a crash at any point leaves old or new.
void commit_transaction(H5File& f, std::shared_ptr<Committed> next, const std::set<std::uint64_t>& dirty,
                        const std::string& what);

}  // namespace imgstore::hdf5
