// The HDF5 file of an hdf5 store, open once per process and shared by every table on it: its handles, its
// published committed state, and the one transaction that may write it. hdf5_store.cpp builds the Store
// (transactions, cursors) on it. The layout itself is hdf5_format.hpp (readable with h5py or h5dump without our
// code). A scan goes in id order through an in-memory id -> row index built from /ids (8 bytes a row), so a
// point read never scans.
//
// H5File guards its own states; nothing outside it changes a handle, a flag or the committed state:
//  - closed, or open with all of /images, /labels, /ids (and /commit, version 2) in one mode: read-only (SWMR
//    reading for version 2, under HDF5's whole-file lock for version 1), or read-write;
//  - read-write only inside this process's one transaction (begin_transaction .. end_transaction), only for
//    version 2, and only while holding the writer lock (writer_lock.hpp), which it takes first: so no other
//    process writes meanwhile, and readers never lock the file. Besides: while creating the file, and while
//    recovering a commit a crash interrupted (under the writer lock; version 1: under HDF5's file lock);
//  - the committed state is never null, immutable once published, and replaced whole (a cursor that holds the
//    old one never sees a commit halfway): by reading the file (version 2: a seqlock on /commit) or by commit();
//  - every write goes through the transaction's members, which refuse outside one;
//  - a child process forked while the handles were open read-write never writes or closes them (see opener_).
//
// Its code is in hdf5_open.cpp (opening, creating), hdf5_file.cpp (the registry, the transaction),
// hdf5_committed.cpp (reading committed states) and hdf5_recovery.cpp (interrupted commits, files cut short).
#pragma once

#include <hdf5.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "busy.hpp"
#include "error.hpp"
#include "hdf5_format.hpp"
#include "hdf5_handle.hpp"
#include "hdf5_journal.hpp"
#include "owner_process.hpp"
#include "posix_file.hpp"
#include "shape.hpp"
#include "store.hpp"
#include "writer_lock.hpp"

namespace imgstore::hdf5 {

struct Compression {
  int gzip = 0;  // 0: none, 1..9: deflate level
};
Compression parse_compression(const std::string& table, const std::string& text);

// One committed state of a file: what a statement reads, plus its own transaction's changes. Immutable once
// published. The rows it names stay valid after later commits, which only append rows and change /ids and
// /labels.
struct Committed {
  using Index = std::map<std::int64_t, std::uint64_t>;
  std::uint64_t rows = 0;                       // committed row count
  std::uint64_t generation = ~std::uint64_t{0};  // version 2: /commit's generation it was read at (~0: never read)
  std::vector<std::int64_t> row_ids;            // per committed row; -1 deleted
  std::vector<std::int64_t> row_labels;         // per committed row
  std::vector<std::uint64_t> row_checksums;     // per committed row (version 3; empty before)
  // A store of shape 'any' (hdf5_format.hpp): per committed row, where its pixels start in the 1-D /images and
  // its /shapes entry as stored (checked when the row is read: hdf5_store.cpp, ragged_row); and where the
  // committed rows' pixels end (the next row's offset). Empty and 0 for a one-shape store.
  std::vector<std::uint64_t> row_offsets;
  std::vector<RowDims> row_dims;
  std::uint64_t bytes = 0;
  Index index;                                  // live id -> row
  std::uint64_t images_end = 0;                 // where its last /images chunk ends in the file
                                                // (hdf5_file_end.hpp; 0: unchecked)

  // The row of a live id, or nullopt. After many lookups of one state whose ids are dense (most stores number
  // them from 0), from a table by id built once for it: a random point read then costs one load instead of a
  // walk down the map's tree (which was a fifth of a random batch's time).
  std::optional<std::uint64_t> row_of(std::int64_t id) const;

 private:
  static constexpr std::uint64_t kNoRow = ~std::uint64_t{0};
  // A cache, not state: built and read only under hdf5_mutex(), which every cursor step holds.
  mutable std::vector<std::uint64_t> by_id_;
  mutable std::uint32_t lookups_ = 0;
};

// The per-row datasets (/images rank 4 uint8, /labels and /ids rank 1 int64, /checksums rank 1 uint64), and a
// store of shape 'any''s /offsets (rank 1 uint64) and /shapes (rank 2 uint32, N x 3); its /images is rank 1, a
// byte per element, so its "rows" are bytes.
enum class Dataset { images, labels, ids, checksums, offsets, shapes };

// The error for a row of a store of shape 'any' whose /offsets and /shapes entries (`offset`, `dims`) are not
// an image within the committed pixels (`bytes` of /images): damaged, as a checksum mismatch is.
Error damaged_entry(const std::string& table, std::int64_t id, const std::string& path, std::uint64_t offset,
                    const RowDims& dims, std::uint64_t bytes);

// How a file is opened (hdf5_open.cpp). Version 1: read-only or read-write under HDF5's whole-file lock.
// Version 2: SWMR, the readers without HDF5's file lock (so that they never keep the writer out), the writer
// with it (so that a reader that takes the lock, such as h5py without swmr=True, keeps it out instead of
// reading a torn file). probe: SWMR read with the lock, to learn the version (a version 1 writer's lock keeps
// it out, as before).
enum class Access { v1_read, v1_write, probe, swmr_read, swmr_write };

class H5File {
  struct Token {
    explicit Token() = default;
  };

 public:
  // The open file of `path` (shared by every table of this process on it), created with `wanted` when missing
  // and `mode` allows; an interrupted commit is rolled back first (not with OpenMode::inspect).
  static std::shared_ptr<H5File> open(const std::string& table, const std::string& path,
                                      const std::optional<Shape>& wanted, const Compression& compression,
                                      std::uint64_t chunk, OpenMode mode, std::chrono::milliseconds timeout);
  H5File(Token, std::string path) : path_(std::move(path)) {}
  ~H5File();
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;

  // What the file is: fixed once open.
  const std::string& path() const { return path_; }
  const Shape& shape() const { return shape_; }
  // A store of shape 'any': the ragged layout of hdf5_format.hpp (1-D /images, /offsets, /shapes).
  bool ragged() const { return shape_.any; }
  // The length of /images' first dimension per chunk: rows (one shape) or bytes (shape 'any').
  std::uint64_t chunk_rows() const { return chunk_rows_; }
  // How much of /images' first dimension holds the rows of `c`: its rows (one shape) or its bytes ('any').
  std::uint64_t image_length(const Committed& c) const { return ragged() ? c.bytes : c.rows; }
  int version() const { return version_; }  // of the format (hdf5_format.hpp): 2 = SWMR readers beside one writer
  bool swmr() const { return version_ >= 2; }
  bool checksummed() const { return version_ >= 3; }  // /checksums
  int filters() const { return filters_; }  // on /images
  int deflate() const { return deflate_; }  // the gzip level when deflate is /images' only filter, else 0
  std::string where(const std::string& table) const { return "table " + table + ": '" + path_ + "'"; }

  // ---- reading (every call under hdf5_mutex())

  // The state this process last read or committed.
  std::shared_ptr<const Committed> committed() const { return committed_; }
  // Version 2, outside this process's transaction: reads the committed state again if another process
  // committed since (a seqlock on /commit, hdf5_format.hpp), waiting up to `timeout` for a commit being applied.
  void refresh(const std::string& table, std::chrono::milliseconds timeout);
  // Reopens (read-only) a file end_transaction left closed (version 1: another process took HDF5's lock first),
  // waiting up to `timeout` for that process's writer.
  void ensure_open(const std::string& table, std::chrono::milliseconds timeout);
  // Rows [row0, row0 + n) of a dataset into `data` (uint8 images, int64 labels and ids, uint64 checksums and
  // offsets, 3 x uint32 shapes; a store of shape 'any''s /images: bytes [row0, row0 + n)).
  void read(Dataset d, std::uint64_t row0, std::uint64_t n, void* data, const std::string& what) const;
  std::uint64_t extent(Dataset d, const std::string& what) const;
  // For chunk-level reads of /images (H5Dread_chunk, H5Dget_chunk_info), and the file's descriptor.
  hid_t images_id() const { return images_.get(); }
  hid_t file_id() const { return file_.get(); }
  // Version 2: whether another process (or connection) holds the writer lock now.
  bool writer_active() const;
  // Whether `path` now names another file than the one open here: a compaction (hdf5_compact.cpp) renamed a
  // new file over it. Tables then open the new one at their next statement (Hdf5Store::follow_replacement);
  // a statement already reading goes on reading this one, which stays intact.
  bool replaced() const;

  // ---- the transaction (one per file per process)

  bool writing() const { return writing_; }
  // Claims the file's one transaction, waiting up to `timeout` for another connection of this process, then
  // takes the writer lock (Error busy after `timeout` while another process writes) and reopens the file for
  // SWMR writing; rows an unfinished transaction left past the committed count are trimmed. Error readonly for
  // a version 1 file or in a child forked while its parent wrote. Called without hdf5_mutex() held.
  void begin_transaction(const std::string& table, std::chrono::milliseconds timeout);
  // Back to read-only, the writer lock released (rows written past the committed count are given back first:
  // cut_to_committed). If another process takes a version 1 file first, it stays closed until ensure_open.
  void end_transaction(const std::string& table) noexcept;
  // HDF5 cannot undo a write that failed half-way for want of space: every write first checks that the file
  // system has room for `bytes`, with a margin for HDF5's metadata, and refuses cleanly (Error full) if not.
  void ensure_space(std::uint64_t bytes, const std::string& what) const;
  // Rows [row0, row0 + n) of /images (shape 'any': bytes), past the committed ones; grows /images to hold them.
  void write_images(std::uint64_t row0, std::uint64_t n, const void* data, const std::string& what);
  // One whole compressed chunk of /images (H5Dwrite_chunk), past the committed count.
  void write_image_chunk(std::uint64_t index, unsigned mask, const std::vector<std::uint8_t>& bytes,
                         const std::string& what);
  // Makes /images hold `rows` rows (the transaction's written rows), growing or shrinking it.
  void resize_images(std::uint64_t rows, const std::string& what);
  // Writes the transaction's new committed state `next` (committed() with the transaction's changes) and
  // publishes it. New rows go past the committed count; the committed rows in `dirty`, which change in place,
  // are journaled first (hdf5_journal.hpp), so a crash at any point leaves old or new. Every dataset ends with
  // exactly the committed rows.
  void commit(std::shared_ptr<Committed> next, const std::set<std::uint64_t>& dirty, const std::string& what);
  // Outside a transaction, holding the file's one transaction slot and the writer lock: writes the last
  // commit's live images, in id order and checked against their checksums, to a new file beside this one
  // (`path`.compact, format 3, the same shape, chunking and compression), makes it durable and renames it
  // over `path`: so the path holds either the old file or the new one, whole, at any moment. This file stays
  // open and intact for the statements reading it. Returns the rows kept. Called without hdf5_mutex() held.
  std::uint64_t compact(const std::string& table, std::chrono::milliseconds timeout);

 private:
  // hdf5_open.cpp: the handles, their checks, a new file's layout.
  void open_handles(const std::string& table, Access access, const std::optional<Shape>& wanted);
  void open_reader(const std::string& table, const std::optional<Shape>& wanted);
  void open_commit(const std::string& table, bool write);
  void find_commit_address(const std::string& what);
  void read_shape(const std::string& table, const std::optional<Shape>& wanted);
  void create(const std::string& table, const Shape& shape, const Compression& compression, std::uint64_t chunk);
  [[noreturn]] void throw_open_error(const std::string& table, Access access, const ErrorStack& stack) const;
  Hid open_file_id(const std::string& table, Access access) const;

  // hdf5_file.cpp: opening existing files, read-only and read-write.
  void open_existing(const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                     std::chrono::milliseconds timeout);
  void open_existing_once(const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                          std::chrono::milliseconds timeout);
  template <typename Attempt>
  std::optional<Error> retry_while_busy(std::chrono::milliseconds timeout, Attempt&& attempt);
  bool open_waiting(const std::string& table, Access access, std::chrono::milliseconds timeout);
  Access read_access() const { return swmr() ? Access::swmr_read : Access::v1_read; }
  // Open for writing in the process that forked this one (see opener_); once its handles are left, the file
  // stays so (they remain open in HDF5).
  bool inherited_writer() const { return !opener_.is_this_process() && (writable_ || left_open_); }
  void refuse_inherited(const std::string& table) const;
  void make_writable(const std::string& table, std::chrono::milliseconds timeout);
  void make_readonly(const std::string& table) noexcept;
  // Closes the handles, except an inherited writer's, which are left open (see opener_).
  void close();
  void require_transaction(const std::string& what) const;

  // hdf5_committed.cpp: committed states.
  void load_committed(const std::string& table, std::chrono::milliseconds timeout);
  void load_committed_v2(const std::string& table, std::chrono::milliseconds timeout);
  std::shared_ptr<Committed> read_rows(const std::string& table, std::uint64_t rows, const char* says) const;
  void read_ragged_rows(Committed& c, std::uint64_t n_images, const char* says, const std::string& what) const;
  bool read_before_commit(const std::string& table, const CommitWord& seen);
  void refresh_datasets(const std::string& what);
  void publish(std::shared_ptr<Committed> c, const CommitWord& seen, const std::string& what);

  CommitWord read_commit(const std::string& what) const;
  void write_commit(std::uint64_t generation, std::uint64_t rows, const std::string& what);
  void transfer(Dataset d, bool write, std::uint64_t row0, std::uint64_t n, void* data, const std::string& what) const;
  hid_t dataset(Dataset d) const;
  // The datasets with one entry per row in this file's version and layout (/images: images_length() of them).
  std::vector<Dataset> row_datasets() const {
    std::vector<Dataset> all{Dataset::images, Dataset::labels, Dataset::ids};
    if (checksummed()) all.push_back(Dataset::checksums);
    if (ragged()) all.insert(all.end(), {Dataset::offsets, Dataset::shapes});
    return all;
  }
  // The extent of /images holding n rows (shape 'any': n bytes).
  std::vector<hsize_t> dims(std::uint64_t n) const {
    if (ragged()) return {n};
    return {n, shape_.height, shape_.width, shape_.channels};
  }
  // The extent of dataset d holding `n` of its units (rows; /images of shape 'any': bytes).
  std::vector<hsize_t> extent_dims(Dataset d, std::uint64_t n) const {
    if (d == Dataset::images) return dims(n);
    if (d == Dataset::shapes) return {n, 3};
    return {n};
  }
  // The length of /images holding the first `rows` rows: `rows` (one shape), or (shape 'any') where row
  // rows - 1 ends, read from the file's /offsets and /shapes (Error corrupt when they are not sound).
  std::uint64_t images_length(std::uint64_t rows, const std::string& what) const;
  void set_rows(std::uint64_t n, const std::string& what);
  // Shrinks each dataset longer than `rows` rows to `rows`; whether any was.
  bool trim_to(std::uint64_t rows, const std::string& what);
  void write_rows(const Committed& old, Committed& next, const std::set<std::uint64_t>& dirty, const std::string& what);
  void flush_and_sync(const std::string& what) const;

  // The file's identity, taken when it is first opened (replaced()); then the file is pinned: a descriptor of
  // our own keeps naming its inode, and an open of this object after a compaction gave the path to another
  // file goes through it (file_name()); an open that still lands on another file is an error, never a mix.
  void remember_identity(const std::string& what);
  // (Through the path while it names the file, as any tool that logs or traces file names expects.)
  std::string file_name() const { return pin_ && replaced() ? "/proc/self/fd/" + std::to_string(pin_.get()) : path_; }
  // hdf5_compact.cpp: the live images of rows `entries` (id order) into `out`, checked.
  void copy_images(H5File& out, const std::vector<std::pair<std::int64_t, std::uint64_t>>& entries,
                   std::vector<std::uint64_t>& checksums, const std::string& table);
  // The same for a store of shape 'any': `next` gets the new file's offsets, shapes, bytes and checksums.
  void copy_ragged_images(H5File& out, const std::vector<std::pair<std::int64_t, std::uint64_t>>& entries,
                          Committed& next, const std::string& table);

  // hdf5_recovery.cpp: commits a crash interrupted, a writer that died, a file a power loss cut short.
  void recover_journal(const std::string& table, const std::optional<std::optional<Journal>>& journal);
  void roll_back_journal(const std::string& table, const Journal& journal);
  std::uint64_t recover_v2(const std::string& table);
  void undo_in_place(const Journal& journal, const std::string& what);
  void recover_abandoned(const std::string& table);
  void restore_recorded_end(const std::string& table);
  // Version 2: the writer lock (byte kWriterLockByte of the .h5 file, which HDF5's own flock does not see).
  LockSpot writer_spot() const { return {path_, LockSpot::Kind::file_byte, kWriterLockByte}; }

  const std::string path_;
  Shape shape_;
  std::uint64_t chunk_rows_ = 1;  // /images' chunk length: rows, or bytes for shape 'any'
  int version_ = 1;
  int filters_ = 0;
  int deflate_ = 0;
  Hid file_;
  Hid images_;
  Hid labels_;
  Hid ids_;
  Hid checksums_;  // version 3: /checksums
  Hid offsets_;    // shape 'any': /offsets
  Hid shapes_;     // shape 'any': /shapes
  dev_t device_ = 0;  // the identity of the file open here (replaced())
  ino_t inode_ = 0;
  Fd pin_;            // names that file for reopening it (file_name())
  Hid commit_;  // version 2: /commit
  WriterLock writer_lock_;
  // Version 2 readers: /commit's one chunk (allocated at creation, unfiltered, never moved) read with pread at
  // its file address: a statement's check for a new commit costs a 16-byte read instead of an H5Drefresh.
  Fd commit_fd_;
  haddr_t commit_address_ = HADDR_UNDEF;
  std::shared_ptr<const Committed> committed_ = std::make_shared<const Committed>();
  bool writing_ = false;    // this process's one transaction is open
  bool writable_ = false;   // opened read-write (reading must not change the file)
  bool left_open_ = false;  // an inherited writer's handles were left open (close)
  // The process whose HDF5 library opened the handles above. A child forked while they were open inherits them
  // with HDF5's metadata cache as it was at the fork. It may read through them (a SWMR reader refreshes what it
  // reads), but never writes through them: a write would allocate space and write metadata from that stale
  // copy, over what other processes committed since. Nor can it open the file a second time beside them (HDF5
  // hands a second open of a file the first one's state). So a child that writes first drops its copies and
  // opens the file itself (make_writable), which is safe for a SWMR reader's handles only: closing them closes
  // the child's copy of the descriptor and nothing else (no write, no lock: strace, HDF5 1.10.8). A writer's
  // handles (the parent forked mid-transaction) are never closed in the child (closing flushes the parent's
  // unfinished state and clears the open-for-write flags): the child can only read the store.
  OwnerProcess opener_;
};

}  // namespace imgstore::hdf5
