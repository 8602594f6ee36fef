// H5File (hdf5_file.hpp): one per file per process (the registry), its handles and datasets, the changes
// between read-only and read-write around a transaction, and the transaction's writes and commit.
// hdf5_open.cpp opens and creates the file, hdf5_committed.cpp reads its committed states, hdf5_recovery.cpp
// recovers it.
#include "hdf5_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "file_registry.hpp"
#include "hdf5_file_end.hpp"
#include "hdf5_open.hpp"

namespace imgstore::hdf5 {

namespace {

FileRegistry<H5File>& registry() {
  static FileRegistry<H5File> r(FileRegistry<H5File>::Fork::reuse);  // see file_registry.hpp
  return r;
}

}  // namespace

Error damaged_entry(const std::string& table, std::int64_t id, const std::string& path, std::uint64_t offset,
                    const RowDims& dims, std::uint64_t bytes) {
  return Error("table " + table + ": image " + std::to_string(id) + " in '" + path + "' is damaged: its /shapes and "
                   "/offsets entries (" + std::to_string(dims[0]) + "x" + std::to_string(dims[1]) + "x" +
                   std::to_string(dims[2]) + " at byte " + std::to_string(offset) +
                   ") are not an image within the committed pixels (" + std::to_string(bytes) + " bytes of /images)",
               ErrorKind::corrupt);
}

H5File::~H5File() {
  const Lock lock(hdf5_mutex());
  close();
  release_memory();
}

// ---- handles and datasets

void H5File::close() {
  const bool leave = inherited_writer();
  left_open_ = left_open_ || leave;
  for (Hid* h : {&commit_, &shapes_, &offsets_, &checksums_, &ids_, &labels_, &images_, &file_}) {
    if (leave) {
      h->leak();
    } else {
      h->reset();
    }
  }
  writable_ = false;
}

hid_t H5File::dataset(Dataset d) const {
  switch (d) {
    case Dataset::images: return images_.get();
    case Dataset::labels: return labels_.get();
    case Dataset::ids: return ids_.get();
    case Dataset::checksums: return checksums_.get();
    case Dataset::offsets: return offsets_.get();
    case Dataset::shapes: return shapes_.get();
  }
  return H5I_INVALID_HID;
}

void H5File::transfer(Dataset d, bool write, std::uint64_t row0, std::uint64_t n, void* data,
                      const std::string& what) const {
  std::vector<hsize_t> count = extent_dims(d, n);
  const int rank = static_cast<int>(count.size());
  std::vector<hsize_t> start(count.size(), 0);
  start[0] = row0;
  const hid_t dset = dataset(d);
  hid_t memtype = H5T_NATIVE_INT64;  // labels, ids
  switch (d) {
    case Dataset::images: memtype = H5T_NATIVE_UINT8; break;
    case Dataset::checksums:
    case Dataset::offsets: memtype = H5T_NATIVE_UINT64; break;
    case Dataset::shapes: memtype = H5T_NATIVE_UINT32; break;
    default: break;
  }
  const Hid fspace = checked(H5Dget_space(dset), H5Sclose, what);
  checked(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), what);
  const Hid mspace = checked(H5Screate_simple(rank, count.data(), nullptr), H5Sclose, what);
  if (write) {
    checked(H5Dwrite(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
  } else {
    checked(H5Dread(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
  }
}

void H5File::read(Dataset d, std::uint64_t row0, std::uint64_t n, void* data, const std::string& what) const {
  transfer(d, false, row0, n, data, what);
}

std::uint64_t H5File::extent(Dataset d, const std::string& what) const {
  const Hid space = checked(H5Dget_space(dataset(d)), H5Sclose, what);
  hsize_t dims[4] = {0, 0, 0, 0};
  if (H5Sget_simple_extent_dims(space.get(), dims, nullptr) < 0) fail(what);
  return dims[0];
}

std::uint64_t H5File::images_length(std::uint64_t rows, const std::string& what) const {
  if (!ragged()) return rows;
  if (rows == 0) return 0;
  std::uint64_t offset = 0;
  RowDims d{};
  transfer(Dataset::offsets, false, rows - 1, 1, &offset, what);
  transfer(Dataset::shapes, false, rows - 1, 1, d.data(), what);
  const auto end = row_end(offset, d, ~std::uint64_t{0});
  if (!end) {
    throw Error(what + ": the last committed row's /offsets and /shapes entries (" + std::to_string(offset) + ", " +
                    std::to_string(d[0]) + "x" + std::to_string(d[1]) + "x" + std::to_string(d[2]) +
                    ") are not sound (damaged file)",
                ErrorKind::corrupt);
  }
  return *end;
}

bool H5File::trim_to(std::uint64_t rows, const std::string& what) {
  bool trimmed = false;
  for (const Dataset d : row_datasets()) {
    const std::uint64_t keep = d == Dataset::images ? images_length(rows, what) : rows;
    if (extent(d, what) <= keep) continue;  // never grown here: a short dataset is damage, for check() to see
    checked(H5Dset_extent(dataset(d), extent_dims(d, keep).data()), what);
    trimmed = true;
  }
  return trimmed;
}

void H5File::set_rows(std::uint64_t n, const std::string& what) {
  const std::uint64_t length = images_length(n, what);  // (read before /offsets and /shapes change)
  for (const Dataset d : row_datasets()) {
    checked(H5Dset_extent(dataset(d), extent_dims(d, d == Dataset::images ? length : n).data()), what);
  }
}

// Version 2: /commit = [generation, rows]. A reader refreshes it first (H5Drefresh: SWMR readers see a dataset's
// new data and extent only after it).
CommitWord H5File::read_commit(const std::string& what) const {
  if (!writable_ && commit_fd_ && commit_address_ != HADDR_UNDEF) {
    // The writer writes /commit with one pwrite; a torn read can pair the new generation with the old row
    // count, which the seqlock's second read of /commit catches (one_commit compares both words).
    std::uint8_t b[16];
    if (::pread(commit_fd_.get(), b, sizeof b, static_cast<off_t>(commit_address_)) == static_cast<ssize_t>(sizeof b)) {
      const auto le = [&](int at) {
        std::uint64_t x = 0;
        for (int i = 7; i >= 0; --i) x = (x << 8) | b[at + i];
        return x;
      };
      return {le(0), le(8)};
    }
  }
  if (!writable_) checked(H5Drefresh(commit_.get()), what);
  std::uint64_t v[2] = {0, 0};
  checked(H5Dread(commit_.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), what);
  return {v[0], v[1]};
}

void H5File::write_commit(std::uint64_t generation, std::uint64_t rows, const std::string& what) {
  const std::uint64_t v[2] = {generation, rows};
  checked(H5Dwrite(commit_.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), what);
}

void H5File::flush_and_sync(const std::string& what) const {
  checked(H5Fflush(file_.get(), H5F_SCOPE_GLOBAL), what);
  void* handle = nullptr;
  if (H5Fget_vfd_handle(file_.get(), H5P_DEFAULT, &handle) >= 0 && handle != nullptr) {
    if (::fsync(*static_cast<int*>(handle)) != 0) {
      throw Error(what + ": fsync failed: " + std::strerror(errno), errno == ENOSPC ? ErrorKind::full : ErrorKind::generic);
    }
  }
}

// ---- opening

// Runs `attempt` (which opens the file) again while it fails busy (HDF5's lock held by another process, a
// commit being applied), closing the file after each failure, up to `timeout`: nullopt once it succeeds, else
// the last busy error. Any other error propagates.
template <typename Attempt>
std::optional<Error> H5File::retry_while_busy(std::chrono::milliseconds timeout, Attempt&& attempt) {
  std::optional<Error> busy;
  const bool done = wait_for([&] {
    try {
      attempt();
      return true;
    } catch (const Error& e) {
      close();
      if (e.kind() != ErrorKind::busy) throw;
      busy = e;
      return false;
    }
  }, timeout);
  if (done) return std::nullopt;
  return busy;
}

// Opens an existing store: read-only, unless a journal says a commit was interrupted, which is rolled back
// first (as SQLite rolls back a hot journal, even for a reader), or a power loss cut the file short.
void H5File::open_existing_once(const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                                std::chrono::milliseconds timeout) {
  if (mode != OpenMode::inspect) restore_recorded_end(table);
  open_reader(table, wanted);
  if (swmr()) {
    if (mode != OpenMode::inspect) recover_abandoned(table);
    load_committed(table, timeout);
    return;
  }
  if (mode == OpenMode::inspect) {  // as it is: check() reports a journal, imgstore_repair rolls it back
    load_committed(table, timeout);
    return;
  }
  const auto journal = read_journal(path_, where(table));
  if (journal && *journal) open_handles(table, Access::v1_write, wanted);
  recover_journal(table, journal);
  if (writable_) open_handles(table, Access::v1_read, wanted);  // rolled back: a reader again
  load_committed(table, timeout);
}

// While another process writes a version 1 file, HDF5's lock keeps readers out too: wait for it, up to `timeout`.
void H5File::open_existing(const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                           std::chrono::milliseconds timeout) {
  const auto busy = retry_while_busy(timeout, [&] { open_existing_once(table, wanted, mode, timeout); });
  if (busy) {
    const std::string said = busy->what();
    if (said.find("; waited ") != std::string::npos) throw *busy;  // it says how long already
    throw Error(said + "; waited " + std::to_string(timeout.count()) + " ms, try again after it commits", ErrorKind::busy);
  }
}

// Opens the file for `access`, waiting up to `timeout` while another process holds HDF5's lock on it.
bool H5File::open_waiting(const std::string& table, Access access, std::chrono::milliseconds timeout) {
  return !retry_while_busy(timeout, [&] { open_handles(table, access, shape_); });
}

void H5File::ensure_open(const std::string& table, std::chrono::milliseconds timeout) {
  if (file_) return;
  if (!open_waiting(table, read_access(), timeout)) {
    throw Error(where(table) + " is being written by another process (HDF5 locks the whole file); waited " +
                    std::to_string(timeout.count()) + " ms, try again after it commits",
                ErrorKind::busy);
  }
}

void H5File::remember_identity(const std::string& what) {
  void* handle = nullptr;
  struct stat st{};
  if (H5Fget_vfd_handle(file_.get(), H5P_DEFAULT, &handle) < 0 || handle == nullptr ||
      ::fstat(*static_cast<int*>(handle), &st) != 0) {
    fail(what + ": the file's descriptor");
  }
  if (inode_ != 0 && (st.st_ino != inode_ || st.st_dev != device_)) {
    throw Error(what + ": opened another file than the one this table reads (an internal error)", ErrorKind::cantopen);
  }
  device_ = st.st_dev;
  inode_ = st.st_ino;
  // A description of our own (not a dup: HDF5's flock on its descriptor must end when HDF5 closes it).
  if (!pin_) pin_ = Fd(::open(("/proc/self/fd/" + std::to_string(*static_cast<int*>(handle))).c_str(), O_RDONLY | O_CLOEXEC));
}

bool H5File::replaced() const {
  struct stat st{};
  if (::stat(path_.c_str(), &st) != 0) return false;  // gone: the next open says so
  return inode_ != 0 && (st.st_ino != inode_ || st.st_dev != device_);
}

bool H5File::writer_active() const {
  try {
    return !WriterLock(writer_spot(), std::chrono::milliseconds(0), path_);
  } catch (const Error&) {
    return false;  // a file this process cannot open for writing has no writer of ours to wait for
  }
}

std::shared_ptr<H5File> H5File::open(const std::string& table, const std::string& path,
                                     const std::optional<Shape>& wanted, const Compression& compression,
                                     std::uint64_t chunk, OpenMode mode, std::chrono::milliseconds timeout) {
  auto& reg = registry();
  const std::lock_guard reg_lock(reg.mutex());
  const Lock lock(hdf5_mutex());
  struct stat st{};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    throw Error("table " + table + ": path '" + path + "' is a directory; expected an HDF5 file", ErrorKind::cantopen);
  }
  if (exists) {
    if (auto f = reg.find(st)) {
      if (wanted && *wanted != f->shape_) throw shape_mismatch(table, *wanted, path, f->shape_);
      return f;
    }
  }
  const bool fresh = !exists || st.st_size == 0;
  if (fresh && (!wanted || mode != OpenMode::create_if_missing)) throw_missing_store(table, path, mode);
  auto f = std::make_shared<H5File>(Token{}, path);
  if (fresh) {
    f->create(table, *wanted, compression, chunk);
    // Made; now a reader like any other (SWMR readers cannot open a file open for plain writing).
    f->make_readonly(table);
    f->ensure_open(table, timeout);
    f->load_committed(table, timeout);
  } else {
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw Error("table " + table + ": '" + path + "' is not an HDF5 file", ErrorKind::cantopen);
    }
    f->open_existing(table, wanted, mode, timeout);
  }
  reg.add(path, table, f);
  return f;
}

// ---- the transaction

// A process forked in the middle of a transaction on the file holds that writer's handles: it may read the
// store but never write it (opener_).
void H5File::refuse_inherited(const std::string& table) const {
  // Before this process claims `writing_`: set already, it is the parent's (a transaction not yet writing).
  if (!inherited_writer() && (opener_.is_this_process() || !writing_)) return;
  throw Error(where(table) + " was being written by process " + std::to_string(opener_.pid()) +
                  " when it forked this process (" + std::to_string(::getpid()) + "); HDF5's handles of that "
                  "transaction cannot be written or closed here (closing them would flush its unfinished state), so "
                  "this process may read the store but not write it: fork outside a transaction, or start the worker "
                  "processes with 'spawn'",
              ErrorKind::readonly);
}

// Reopens the file read-write for a transaction's first write, and trims rows an unfinished transaction left.
// Version 2 only: the writer lock (other writers wait for it, readers never), then the file for SWMR writing.
// Between closing and reopening, another process may have written (or crashed writing): so its journal is
// rolled back and the committed state read again, as at open.
void H5File::make_writable(const std::string& table, std::chrono::milliseconds timeout) {
  require_writable(table, path_);
  const std::string dir = std::filesystem::path(path_).parent_path().string();
  require_writable(table, dir.empty() ? "." : dir);  // the journal is made beside the file
  if (!swmr()) {
    // Fewer states: version 1 (and files made by other tools) had their own commit protocol under HDF5's
    // whole-file lock. They are read as they are; a copy is a version 2 store.
    throw Error("table " + table + ": '" + path_ + "' is an hdf5 store of format version 1 (or an HDF5 file made by "
                "another tool), which imgstore reads but no longer writes; copy it into a new store to write: "
                "CREATE VIRTUAL TABLE t2 USING hdf5(path='new.h5'); INSERT INTO t2 SELECT * FROM " + table,
                ErrorKind::readonly);
  }
  writer_lock_ = WriterLock(writer_spot(), timeout, where(table) + ": the writer lock");
  if (!writer_lock_) throw_writer_busy(table, path_, "another process", timeout);
  // The lock must be on the file open here, which the path must still name: a compaction renames a new file
  // over the path while holding the old file's lock (hdf5_compact.cpp).
  struct stat locked{};
  if (::fstat(writer_lock_.fd(), &locked) != 0 || locked.st_ino != inode_ || locked.st_dev != device_ || replaced()) {
    writer_lock_.release();
    throw Error(where(table) + " was replaced by a compaction while this table had it open; the table reopens it",
                ErrorKind::busy);
  }
  try {
    if (!open_waiting(table, Access::swmr_write, timeout)) {
      throw Error(where(table) + " is open in another process that locks the file (an HDF5 reader without SWMR, "
                  "e.g. h5py without swmr=True, locking=False); waited " + std::to_string(timeout.count()) +
                  " ms, try again when it has closed the file",
                  ErrorKind::busy);
    }
    recover_v2(table);
    load_committed(table, timeout);  // read again only if another process committed since
    trim_to(committed_->rows, where(table) + ": trimming rows of an unfinished transaction");
  } catch (...) {
    close();
    writer_lock_.release();
    try {
      open_handles(table, Access::swmr_read, shape_);  // keep serving reads
    } catch (...) {
      // Closed: ensure_open reopens it at the next read; the first error is the one to report.
    }
    throw;
  }
}

void H5File::make_readonly(const std::string& table) noexcept {
  if (!writable_ || inherited_writer()) return;  // an inherited writer's handles stay as they are
  close();
  writer_lock_.release();
  try {
    open_handles(table, read_access(), shape_);
  } catch (...) {
    close();  // another process was quicker: ensure_open reopens it when this process reads again
  }
}

void H5File::begin_transaction(const std::string& table, std::chrono::milliseconds timeout) {
  refuse_inherited(table);  // before claiming writing_, which a parent mid-transaction left set
  // The file's one transaction: claimed under the mutex, waited for without it (the other may commit).
  const bool claimed = wait_for([&] {
    const Lock lock(hdf5_mutex());
    return !std::exchange(writing_, true);
  }, timeout);
  if (!claimed) throw_writer_busy(table, path_, "another connection in this process", timeout);
  const Lock lock(hdf5_mutex());
  try {
    make_writable(table, timeout);
  } catch (...) {
    writing_ = false;
    throw;
  }
}

void H5File::end_transaction(const std::string& table) noexcept {
  if (!writing_) return;
  if (writable_ && !inherited_writer()) {
    try {
      // Rows written past the committed count (a rolled-back transaction's) are given back now, so that the
      // file holds exactly the committed rows, as h5py reads it.
      const std::string what = where(table) + ": rollback";
      // A commit that failed half-way (its journal, an odd generation) is rolled back first. The file's own
      // count is kept: a commit that failed after its commit point did commit (read at the next refresh).
      if (trim_to(recover_v2(table), what)) flush_and_sync(what);
    } catch (...) {
      // Left for the next transaction, which trims them (make_writable); readers never read past the count.
    }
  }
  writing_ = false;
  make_readonly(table);
}

void H5File::require_transaction(const std::string& what) const {
  if (!writing_ || !writable_ || inherited_writer()) {
    throw Error(what + ": the file is not open for this process's transaction (an internal error)", ErrorKind::generic);
  }
}

void H5File::ensure_space(std::uint64_t bytes, const std::string& what) const {
  struct statvfs fs{};
  if (::statvfs(path_.c_str(), &fs) != 0) return;
  const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  const std::uint64_t needed = bytes + bytes / 8 + (2u << 20);
  if (free < needed) {
    throw Error(what + ": the file system is full (" + std::to_string(free) + " bytes free, this write needs about " +
                    std::to_string(needed) + "); the transaction was rolled back",
                ErrorKind::full);
  }
}

void H5File::resize_images(std::uint64_t rows, const std::string& what) {
  require_transaction(what);
  if (rows < image_length(*committed_)) {
    throw Error(what + ": cannot cut /images below the committed rows", ErrorKind::generic);
  }
  checked(H5Dset_extent(images_.get(), dims(rows).data()), what);
}

void H5File::write_images(std::uint64_t row0, std::uint64_t n, const void* data, const std::string& what) {
  require_transaction(what);
  if (row0 < image_length(*committed_)) {
    throw Error(what + ": committed images are never written over", ErrorKind::generic);
  }
  if (extent(Dataset::images, what) < row0 + n) checked(H5Dset_extent(images_.get(), dims(row0 + n).data()), what);
  transfer(Dataset::images, true, row0, n, const_cast<void*>(data), what);  // H5Dwrite only reads it
}

void H5File::write_image_chunk(std::uint64_t index, unsigned mask, const std::vector<std::uint8_t>& bytes,
                               const std::string& what) {
  require_transaction(what);
  const hsize_t offset[4] = {index * chunk_rows_, 0, 0, 0};
  if (offset[0] < committed_->rows) throw Error(what + ": committed images are never written over", ErrorKind::generic);
  checked(H5Dwrite_chunk(images_.get(), H5P_DEFAULT, mask, offset, bytes.size(), bytes.data()), what + ": H5Dwrite_chunk");
}

// Writes /ids and /labels of `next`: the committed rows in `dirty` in place, the new rows past `old`'s count
// (and a store of shape 'any''s /offsets and /shapes of the new rows: committed rows never change them).
void H5File::write_rows(const Committed& old, Committed& next, const std::set<std::uint64_t>& dirty,
                        const std::string& what) {
  const std::uint64_t total = next.rows;
  if (total > old.rows) {
    for (const Dataset d : row_datasets()) {
      if (d != Dataset::images) checked(H5Dset_extent(dataset(d), extent_dims(d, total).data()), what);
    }
  }
  for (const auto row : dirty) {
    transfer(Dataset::ids, true, row, 1, next.row_ids.data() + row, what);
    transfer(Dataset::labels, true, row, 1, next.row_labels.data() + row, what);
    if (checksummed()) transfer(Dataset::checksums, true, row, 1, next.row_checksums.data() + row, what);
  }
  if (total > old.rows) {
    const std::uint64_t appended = total - old.rows;
    transfer(Dataset::ids, true, old.rows, appended, next.row_ids.data() + old.rows, what);
    transfer(Dataset::labels, true, old.rows, appended, next.row_labels.data() + old.rows, what);
    if (checksummed()) {
      transfer(Dataset::checksums, true, old.rows, appended, next.row_checksums.data() + old.rows, what);
    }
    if (ragged()) {
      transfer(Dataset::offsets, true, old.rows, appended, next.row_offsets.data() + old.rows, what);
      transfer(Dataset::shapes, true, old.rows, appended, next.row_dims.data() + old.rows, what);
    }
  }
}

void H5File::commit(std::shared_ptr<Committed> next, const std::set<std::uint64_t>& dirty, const std::string& what) {
  require_transaction(what);
  const Committed& old = *committed_;
  Journal journal{old.rows, {}, checksummed()};
  for (const auto row : dirty) {
    journal.entries.push_back({row, old.row_ids[row], old.row_labels[row], checksummed() ? old.row_checksums[row] : 0});
  }
  if (!journal.entries.empty()) {
    // Before committed rows change in place: /commit's generation made odd (synced; readers of another process
    // read the state before it meanwhile), then their old values to the journal, made durable.
    write_commit(old.generation + 1, old.rows, what);
    flush_and_sync(what);
    write_journal(path_, journal, what);
  }
  write_rows(old, *next, dirty, what);
  trim_to(next->rows, what);  // rows written past the new count (undone by ROLLBACK TO) are given back
  // The new rows reach the disk first; then the committed row count (/commit), flushed and synced; then, if
  // the commit changed committed rows, the journal goes.
  flush_and_sync(what);
  // The commit point: the even generation with the new row count, which readers poll.
  next->generation = old.generation + 2;
  write_commit(next->generation, next->rows, what);
  flush_and_sync(what);
  if (!journal.entries.empty()) remove_journal(path_, what);
  next->images_end = images_end(*this, image_length(*next));
  committed_ = std::move(next);
}

}  // namespace imgstore::hdf5
