// The hdf5 backend's Store and Cursor (private to the backend): hdf5_store.cpp holds the store (transactions),
// hdf5_cursor.cpp the cursor (reads: HDF5, or threaded gzip chunks).
#pragma once

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hdf5_chunks.hpp"
#include "hdf5_file.hpp"
#include "store.hpp"
#include "thread_pool.hpp"
#include "undo_log.hpp"

namespace imgstore::hdf5 {

class Hdf5Store;

// A scan's block buffer in pages of its own (an anonymous mapping), given back to the system when the cursor
// ends. A freed 4 MiB heap block raises glibc's mmap threshold, so the next ones come from the heap, where a
// gzip store's smaller allocations pin them: 200 stores opened, scanned and dropped kept 4 MB more.
class PageBuffer {
 public:
  PageBuffer() = default;
  ~PageBuffer() { release(); }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  std::uint8_t* data() const { return data_; }
  // Room for at least `bytes` (the contents are not kept); Error nomem naming `what` when there is none.
  void reserve(std::size_t bytes, const std::string& what) {
    if (bytes <= size_) return;
    release();
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw Error(what + ": no memory for a block of " + std::to_string(bytes) + " bytes", ErrorKind::nomem);
    data_ = static_cast<std::uint8_t*>(p);
    size_ = bytes;
  }

 private:
  void release() noexcept {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = nullptr;
    size_ = 0;
  }
  std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

class Hdf5Cursor final : public Cursor {
 public:
  Hdf5Cursor(Hdf5Store& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids);
  bool at_end() const override { return at_end_; }
  void next() override;
  std::int64_t id() const override { return walk_.id(); }
  std::int64_t label() override;
  std::span<const std::uint8_t> pixels() override;
  std::span<const std::uint8_t> pixels_unchecked(PixelCheck& check) override;
  std::size_t copy_rows(std::uint8_t* out, std::size_t max_rows, std::vector<RowCopy>& rows) override;
  std::optional<Shape> row_shape() override;

 private:
  std::span<const std::uint8_t> read_pixels();
  // read_pixels of a store of shape 'any': the row's bytes of the 1-D /images (blocks of bytes in scans).
  std::span<const std::uint8_t> read_ragged_pixels();

  Hdf5Store& store_;
  const std::shared_ptr<const Committed> snapshot_;  // the committed state this statement reads
  const std::shared_ptr<H5File> file_;               // the file it reads (a compaction may give the table a new one)
  IdWalk<std::uint64_t> walk_;                       // id -> row
  bool at_end_ = false;
  // Scans read a block of rows per H5Dread into this reused buffer (shape 'any': a block of bytes of /images;
  // block_first_ and block_rows_ count bytes).
  PageBuffer block_;
  std::uint64_t block_first_ = 0;
  std::uint64_t block_rows_ = 0;
  std::uint64_t block_generation_ = 0;  // the store's generation when the block was read
  std::uint64_t block_bytes_ = kFirstScanBlockBytes;  // the next block's size (doubling up to kScanBlockBytes)
  std::uint64_t next_block_bytes() {
    const std::uint64_t bytes = block_bytes_;
    block_bytes_ = std::min(2 * block_bytes_, kScanBlockBytes);
    return bytes;
  }
  std::vector<std::uint8_t> single_;
  Committed::Index::const_iterator hint_;  // where the scan is in snapshot_->index (immutable: stays valid)
  std::unique_ptr<ChunkReader> chunks_;    // a threaded gzip scan's chunks
  // A gzip scan without threads: the chunk it is in, inflated outside hdf5_mutex() (read_pixels).
  std::uint64_t inflated_index_ = ~std::uint64_t{0};
  std::vector<std::uint8_t> inflated_;
};

class Hdf5Store final : public Store {
 public:
  Hdf5Store(std::string table, std::shared_ptr<H5File> file, std::chrono::milliseconds timeout, unsigned threads,
            bool verify)
      : table_(std::move(table)), f_(std::move(file)), timeout_(timeout), verify_(verify), pool_(threads) {}
  ~Hdf5Store() override;

  const Shape& shape() const override { return f_->shape(); }
  const std::string& table() const { return table_; }
  H5File& file() { return *f_; }
  const std::shared_ptr<H5File>& file_ptr() { return f_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  // The committed state a new statement reads (inside this table's transaction no other can commit); first
  // the file the path names now, if a compaction replaced it.
  std::shared_ptr<const Committed> snapshot();
  // imgstore_compact: rewrites the store without dead rows (H5File::compact) in a transaction of its own.
  Compacted compact() override;

  std::uint64_t count() override;
  std::optional<std::int64_t> max_id() override;
  std::unique_ptr<Cursor> scan(IdRange range) override {
    return std::make_unique<Hdf5Cursor>(*this, range, std::vector<std::int64_t>{}, false);
  }
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override {
    return std::make_unique<Hdf5Cursor>(*this, IdRange{}, std::move(ids), true);
  }

  // This connection's transaction has added, moved or deleted ids (its rows differ from a snapshot's index).
  bool moves_rows() const { return !overlay_.empty(); }
  // The row of a live id as this connection sees it: its transaction's changes over the snapshot `c`.
  std::optional<std::uint64_t> row_of(const Committed& c, std::int64_t id) const;
  // The first live id >= from, with its row.
  // `hint` (an iterator into snap.index at or before the answer, or end) saves the search in a scan.
  std::optional<std::pair<std::int64_t, std::uint64_t>> first_from(const Committed& snap, std::int64_t from,
                                                                   Committed::Index::const_iterator& hint) const;
  std::int64_t label_at(const Committed& c, std::uint64_t row) const;
  // Version 3, unless verify=0: throws Error corrupt, naming the table, the id and the file, when `pixels`
  // read for `row` of `c` (or of this transaction) do not match the row's checksum (checksum.hpp).
  void verify(const Committed& c, std::uint64_t row, std::int64_t id, std::span<const std::uint8_t> pixels) const;
  // What verify() would check of that row, for a caller that checks it later (Cursor::pixels_unchecked).
  PixelCheck check_of(const Committed& c, std::uint64_t row) const;
  // Rows written to the file so far (committed, plus this transaction's full blocks).
  std::uint64_t rows_in_file() const { return f_->committed()->rows + flushed_; }
  // A store of shape 'any' (hdf5_format.hpp): a row's place in /images and its shape, as this connection sees
  // it: a committed row of `c` (its entries checked: Error corrupt naming `id` when damaged) or one of this
  // transaction's.
  struct RaggedRow {
    std::uint64_t offset;
    Shape shape;
  };
  RaggedRow ragged_row(const Committed& c, std::uint64_t row, std::int64_t id) const;
  // Shape 'any': the bytes of /images written to the file so far (rows_in_file's).
  std::uint64_t bytes_in_file() const { return new_offset(flushed_); }
  // A new row still in the write buffer.
  const std::uint8_t* buffered(std::uint64_t row) const;
  std::uint64_t generation() const { return generation_; }
  // The codec pool of a gzip store with threads > 1 (hdf5_chunks.hpp), else nullptr.
  ThreadPool* pool();
  // gzip of one-shape stores: whole chunks compressed by us, not by HDF5's filter (hdf5_chunks.hpp).
  bool direct_chunks() const;
  // Writes the chunks still being compressed, so that HDF5 reads this transaction's rows.
  void settle();

  void put(const Image& image, bool replace) override;
  bool set_label(std::int64_t id, std::int64_t label) override;
  bool erase(std::int64_t id) override;
  std::vector<std::string> check(bool full) override;

  void begin() override;
  void sync() override;
  void rollback() override;
  void savepoint(int level) override { undo_.savepoint(level); }
  void release(int level) override { undo_.release(level); }
  void rollback_to(int level) override;

 private:
  // How to undo one change. `appended` is the new-row count before the change: undoing back to a savepoint
  // also forgets the rows appended after it.
  struct Undo {
    enum Kind { kId, kLabel, kNewLabel } kind;
    std::int64_t id;
    std::uint64_t row;
    std::int64_t old_label;
    std::optional<std::optional<std::uint64_t>> old_overlay;  // outer empty: id was not in the overlay
    bool had_label;
    std::uint64_t appended;
  };

  std::uint64_t write_block_rows() const { return block_rows(f_->chunk_rows(), shape().bytes(), kWriteBlockBytes); }
  // The write buffer's size at which it is written: a block of rows, or (shape 'any') about kWriteBlockBytes.
  std::uint64_t write_block_bytes() const {
    return shape().any ? kWriteBlockBytes : write_block_rows() * shape().bytes();
  }
  // Shape 'any': where new row i starts in /images (i == appended_: where the next one will).
  std::uint64_t new_offset(std::uint64_t i) const;
  std::int64_t max_overlay() const;
  void remember_id(std::int64_t id);
  void undo_one(const Undo& u);
  // Forgets new rows past `count` (they belong to undone changes).
  void truncate_new_rows(std::uint64_t count);
  void flush_block();
  // check() of a store of shape 'any' (its entries; with `full`, its images).
  void check_ragged(const Committed& c, bool full, std::vector<std::string>& problems);
  // flush_block for a store of shape 'any': the buffer's bytes appended to the 1-D /images.
  void flush_ragged_block();
  // flush_block for a gzip store with a pool: the whole chunks compressed on the pool (hdf5_chunks.hpp).
  void flush_block_direct(std::uint64_t first, std::uint64_t n, const std::string& what);
  // Writes the transaction and publishes the new committed state. New rows go past the committed count; changes
  // to committed rows are journaled first (hdf5_journal.hpp), so a crash at any point leaves old or new.
  void commit_changes();
  // The committed state after this transaction: `old` with its changes; `dirty` gets the committed rows that
  // change in place.
  std::shared_ptr<Committed> next_committed(const Committed& old, std::set<std::uint64_t>& dirty) const;
  // Drops the transaction; rows written past the committed count are trimmed from the file.
  void discard();
  void finish();
  // Outside a transaction: opens the file the path names now, if a compaction renamed a new one over it.
  void follow_replacement();
  // After a commit, inside its transaction: compacts when dead rows (deleted, replaced) outnumber the live ones
  // (and hold at least kDeadBytesToCompact), so the file stays within about twice its live data by itself.
  bool compact_if_mostly_dead();

  const std::string table_;
  std::shared_ptr<H5File> f_;
  const std::chrono::milliseconds timeout_;  // the `timeout` argument
  const bool verify_;                        // the `verify` argument
  UndoLog<Undo> undo_;
  std::map<std::int64_t, std::optional<std::uint64_t>> overlay_;  // id -> new row, or deleted
  std::map<std::uint64_t, std::int64_t> label_overlay_;            // committed row -> new label
  std::vector<std::int64_t> new_labels_;                           // per new row
  std::vector<std::int64_t> new_ids_;                              // per new row (version 3)
  std::vector<std::uint64_t> new_pixel_terms_;                     // per new row: pixels_term (version 3)
  struct NewExtent {
    std::uint64_t offset;  // in /images
    std::uint64_t bytes;
    RowDims dims;
  };
  std::vector<NewExtent> new_extents_;                             // per new row (shape 'any')
  std::vector<std::uint8_t> pending_;                              // new rows not yet written
  std::uint64_t appended_ = 0;                                     // new rows
  std::uint64_t flushed_ = 0;                                      // new rows written to the file
  std::uint64_t generation_ = 0;
  LazyPool pool_;  // the `threads` argument (thread_pool.hpp)
  std::unique_ptr<ChunkWriter> writer_;  // whole chunks being compressed, written in order
};

}  // namespace imgstore::hdf5
