// The hdf5 backend's cursor (hdf5_store_impl.hpp): pixels read through HDF5, which finds each chunk in its
// chunk index by coordinates (exact: no address is guessed, and no mapping of the file can fault when the file
// is truncated under us, hdf5_file_end.hpp): a point read one row through the chunk cache, a scan a block of
// whole chunks per H5Dread into the cursor's buffer, a threaded gzip scan's chunks inflated ahead on the pool
// (hdf5_chunks.hpp); this connection's transaction's rows from its write buffer or the file. A store of shape
// 'any' reads the row's bytes of its 1-D /images the same ways (read_ragged_pixels), gzip through HDF5's filter.
#include <hdf5.h>

#include <algorithm>

#include "hdf5_file_end.hpp"
#include "hdf5_store_impl.hpp"

namespace imgstore::hdf5 {

Hdf5Cursor::Hdf5Cursor(Hdf5Store& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids)
    : store_(store),
      snapshot_(store.snapshot()),  // (first: it may move the table to a compacted file)
      file_(store.file_ptr()),
      walk_(range, std::move(ids), by_ids),
      hint_(snapshot_->index.end()) {
  next();
}

void Hdf5Cursor::next() {
  const Lock lock(hdf5_mutex());
  at_end_ = !walk_.step([&](std::int64_t id) { return store_.row_of(*snapshot_, id); },
                        [&](std::int64_t from) { return store_.first_from(*snapshot_, from, hint_); });
}

std::int64_t Hdf5Cursor::label() {
  const Lock lock(hdf5_mutex());
  return store_.label_at(*snapshot_, walk_.value());
}

std::span<const std::uint8_t> Hdf5Cursor::pixels() {
  const std::span<const std::uint8_t> px = read_pixels();
  store_.verify(*snapshot_, walk_.value(), walk_.id(), px);
  return px;
}

std::span<const std::uint8_t> Hdf5Cursor::pixels_unchecked(PixelCheck& check) {
  const std::span<const std::uint8_t> px = read_pixels();
  check = store_.check_of(*snapshot_, walk_.value());
  return px;
}

std::optional<Shape> Hdf5Cursor::row_shape() {
  if (!store_.shape().any) return std::nullopt;
  const Lock lock(hdf5_mutex());
  return store_.ragged_row(*snapshot_, walk_.value(), walk_.id()).shape;
}

// A scan's run of committed rows whose ids follow each other in the index as their rows do in /images (a store
// loaded in id order and not changed since, the common case) is read with one H5Dread straight into `out`.
std::size_t Hdf5Cursor::copy_rows(std::uint8_t* out, std::size_t max_rows, std::vector<RowCopy>& rows) {
  if (store_.shape().any) {
    // Rows of many sizes are not rows of one array (the bulk reader refuses such a store before it gets here).
    throw Error("table " + store_.table() + ": its images differ in size (shape 'any'); expected a store of one "
                "shape for a copy into one array",
                ErrorKind::mismatch);
  }
  std::size_t run = 0;
  {
    const Lock lock(hdf5_mutex());
    const std::uint64_t first = walk_.value();
    const bool plain = !walk_.by_ids() && file_ == store_.file_ptr() && !store_.moves_rows() &&
                       !(file_->deflate() > 0 && store_.pool() != nullptr);  // (a threaded gzip scan inflates ahead)
    if (plain && first < snapshot_->rows && hint_ != snapshot_->index.end() && hint_->first == walk_.id()) {
      const std::uint64_t limit = std::min<std::uint64_t>(
          {max_rows, snapshot_->rows - first, block_rows(file_->chunk_rows(), store_.shape().bytes(), kScanBlockBytes)});
      run = 1;
      for (auto it = std::next(hint_); run < limit && it != snapshot_->index.end() && it->first <= walk_.range().hi &&
                                       it->second == first + run;
           ++it) {
        ++run;
      }
    }
    if (run > 1) {
      H5File& f = *file_;
      f.ensure_open(store_.table(), store_.timeout());
      require_file_reaches(f, snapshot_->images_end, store_.table());
      f.read(Dataset::images, first, run, out, f.where(store_.table()) + ": reading ids " + std::to_string(walk_.id()) + "..");
      require_file_reaches(f, snapshot_->images_end, store_.table());
      rows.clear();
      auto it = hint_;
      for (std::uint64_t k = 0; k < run; ++k, ++it) {
        rows.push_back({it->first, store_.label_at(*snapshot_, first + k), store_.check_of(*snapshot_, first + k)});
      }
    }
  }
  if (run <= 1) return Cursor::copy_rows(out, max_rows, rows);
  for (std::uint64_t k = 0; k < run; ++k) next();
  return run;
}

std::span<const std::uint8_t> Hdf5Cursor::read_pixels() {
  if (store_.shape().any) return read_ragged_pixels();
  const std::uint64_t row = walk_.value();
  const std::size_t bytes = store_.shape().bytes();
  Lock lock(hdf5_mutex());
  H5File& f = *file_;
  const bool own_file = file_ == store_.file_ptr();  // else a compaction moved the table on: no rows of its own
  if (own_file) {
    if (const std::uint8_t* p = store_.buffered(row)) return {p, bytes};
    if (row >= snapshot_->rows) store_.settle();  // this transaction's rows: the compressed ones written first
  }
  f.ensure_open(store_.table(), store_.timeout());
  // Every read from the file is bracketed by the check that the file still holds the committed images:
  // before it (a truncated file fails here, not after HDF5 retries its metadata reads for seconds) and after
  // it (zeros read past a truncation that raced the read are not served): hdf5_file_end.hpp. Rows served from
  // a block already read were checked with it: no system call per row.
  const auto reading = [&](auto&& read) {
    require_file_reaches(f, snapshot_->images_end, store_.table());
    read();
    require_file_reaches(f, snapshot_->images_end, store_.table());
  };
  if (!walk_.by_ids() && row < snapshot_->rows && f.deflate() > 0) {
    if (ThreadPool* pool = store_.pool()) {
      // A gzip scan with threads: whole chunks read here, inflated ahead on the pool (hdf5_chunks.hpp).
      if (!chunks_) chunks_ = std::make_unique<ChunkReader>(*pool, 4 * pool->size());
      const std::uint64_t end = (snapshot_->rows + f.chunk_rows() - 1) / f.chunk_rows();
      const std::vector<std::uint8_t>* chunk = nullptr;
      reading([&] { chunk = &chunks_->chunk(f, row / f.chunk_rows(), end, store_.table()); });
      return {chunk->data() + (row % f.chunk_rows()) * bytes, bytes};
    }
    // Without threads: the chunk read as stored under the lock and inflated after it, so that scans of
    // several stores (a sharded table's shards on their lanes) inflate at once; one chunk at a time.
    const std::uint64_t chunk_rows = f.chunk_rows();  // (read under the lock: a reopen may change it)
    const std::uint64_t index = row / chunk_rows;
    if (index != inflated_index_) {
      const std::string what = f.where(store_.table()) + ": reading chunk " + std::to_string(index) + " of /images";
      StoredChunk raw;
      reading([&] { raw = read_stored_chunk(f, index, what); });
      lock.unlock();
      inflated_index_ = ~std::uint64_t{0};
      inflated_ = inflate_chunk(raw, chunk_rows * bytes, what);
      inflated_index_ = index;
    }
    return {inflated_.data() + (row % chunk_rows) * bytes, bytes};
  }
  // (Made only where a read happens: most rows of a scan come from the block already read.)
  const auto what = [&] { return f.where(store_.table()) + ": reading id " + std::to_string(walk_.id()); };
  if (walk_.by_ids()) {
    // A point read: one row through the chunk cache. (Not a pread at the row's address: HDF5 1.10's
    // H5Dget_chunk_info_by_coord walks every chunk, about 200 us a call at 100,000 images.)
    single_.resize(bytes);
    reading([&] { f.read(Dataset::images, row, 1, single_.data(), what()); });
    return single_;
  }
  if (row < block_first_ || row >= block_first_ + block_rows_ || block_generation_ != store_.generation()) {
    // A scan: a block of whole chunks per H5Dread (up to about 4 MiB), reused across blocks. Rows past the
    // file's written rows are not read (they are still in the writer's buffer).
    const std::uint64_t chunk = f.chunk_rows();
    const std::uint64_t rows_per_block = block_rows(chunk, bytes, next_block_bytes());
    block_first_ = row / chunk * chunk;
    const std::uint64_t in_file = own_file ? std::max(store_.rows_in_file(), snapshot_->rows) : snapshot_->rows;
    block_rows_ = std::min(rows_per_block, in_file - block_first_);
    block_.reserve(block_rows_ * bytes, what());
    block_generation_ = store_.generation();
    reading([&] { f.read(Dataset::images, block_first_, block_rows_, block_.data(), what()); });
  }
  return {block_.data() + (row - block_first_) * bytes, bytes};
}

// read_pixels of a store of shape 'any': the row's place and shape from the snapshot (checked: a damaged entry
// is an error naming the id) or this transaction; its bytes from the write buffer, or through HDF5 from the
// 1-D /images: a point read exactly the row's bytes, a scan a block (growing to kScanBlockBytes) from the chunk
// holding the row's first byte (rows loaded in id order lie one after another, so the next rows are in it).
std::span<const std::uint8_t> Hdf5Cursor::read_ragged_pixels() {
  const std::uint64_t row = walk_.value();
  const Lock lock(hdf5_mutex());
  const Hdf5Store::RaggedRow at = store_.ragged_row(*snapshot_, row, walk_.id());
  const std::uint64_t offset = at.offset;  // (not a structured binding: the lambdas below capture it)
  const std::size_t bytes = at.shape.bytes();
  H5File& f = *file_;
  const bool own_file = file_ == store_.file_ptr();  // else a compaction moved the table on: no rows of its own
  if (own_file) {
    if (const std::uint8_t* p = store_.buffered(row)) return {p, bytes};
  }
  f.ensure_open(store_.table(), store_.timeout());
  const auto reading = [&](auto&& read) {  // as read_pixels: the file must still hold the committed images
    require_file_reaches(f, snapshot_->images_end, store_.table());
    read();
    require_file_reaches(f, snapshot_->images_end, store_.table());
  };
  const auto what = [&] { return f.where(store_.table()) + ": reading id " + std::to_string(walk_.id()); };
  if (walk_.by_ids()) {
    single_.resize(bytes);
    reading([&] { f.read(Dataset::images, offset, bytes, single_.data(), what()); });
    return single_;
  }
  if (offset < block_first_ || offset + bytes > block_first_ + block_rows_ || block_generation_ != store_.generation()) {
    // Bytes past those written to the file are not read (they are still in the writer's buffer).
    const std::uint64_t in_file = own_file ? std::max(store_.bytes_in_file(), snapshot_->bytes) : snapshot_->bytes;
    block_first_ = offset / f.chunk_rows() * f.chunk_rows();
    block_rows_ = std::min(std::max(next_block_bytes(), offset + bytes - block_first_), in_file - block_first_);
    block_.reserve(block_rows_, what());
    block_generation_ = store_.generation();
    reading([&] { f.read(Dataset::images, block_first_, block_rows_, block_.data(), what()); });
  }
  return {block_.data() + (offset - block_first_), bytes};
}

}  // namespace imgstore::hdf5
