// Reading committed /images rows straight from a read-only mmap of the file: HDF5 stays the writer and the
// format is unchanged, but a point read or scan of an unfiltered store costs a pointer instead of an H5Dread
// (about 2 us of HDF5's per-call work each).
//
// Chunk addresses: libhdf5 1.10 has no call that lists them in one pass (H5Dget_chunk_info_by_coord walks the
// chunk index from its start, so asking for every chunk is quadratic: 1 s for 100,000 images). HDF5 writes a
// load's chunks one after another, so each chunk's address is predicted from the previous one's, and checked
// the first time the chunk is read: its stored bytes (H5Dread_chunk, a direct index lookup) must equal the
// mapped bytes at the predicted address; a wrong prediction (a run of chunks ends, e.g. at a commit's
// metadata) is looked up exactly instead and the following predictions start from there. Only checked chunks
// are served from the mapping. An unfiltered chunk, once allocated, never moves and is never freed (a rollback
// keeps /images' extent: H5File::keeps_image_chunks), so HDF5 never reuses a chunk's space: an address once
// checked stays right for the file's life, and a prediction can only land on a live chunk or on metadata.
//
// Used for version 2 files only (SWMR: no other process rewrites the file under a reader; version 1 files keep
// the old path, read under HDF5's lock). Filtered chunks (gzip) are read through HDF5 (hdf5_chunks.hpp).
#pragma once

#include <hdf5.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace imgstore::hdf5 {

class H5File;

// A read-only MAP_SHARED mapping of a whole file (as long as it was when mapped), unmapped when the last
// holder lets go: cursors keep the mapping of their committed state while a newer one replaces it.
class Mapping {
 public:
  // Maps `path`; nullptr when it cannot be mapped (then reads go through HDF5).
  static std::shared_ptr<const Mapping> open(const std::string& path);
  Mapping(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  // Asks the kernel to read [offset, offset + bytes) in the background (a scan's next block, when cold).
  void prefetch(std::uint64_t offset, std::uint64_t bytes) const;

 private:
  const std::uint8_t* data_;
  std::size_t size_;
};

// The file addresses of the /images chunks that hold a committed state's rows, over one mapping. Shared by
// every cursor on that state; checking a prediction (under hdf5_mutex()) is its only change.
class ChunkMap {
 public:
  ChunkMap(std::shared_ptr<const Mapping> mapping, std::uint64_t rows, std::uint64_t chunk_rows, std::uint64_t image_bytes);

  // The pixels of `row` in the mapping, or nullptr (not checked yet: check(); or never mapped).
  const std::uint8_t* row(std::uint64_t row) const {
    const std::uint64_t chunk = row / chunk_rows_;
    if (chunk >= slots_.size()) return nullptr;
    const std::uint64_t slot = slots_[chunk].load(std::memory_order_acquire);
    if ((slot & kChecked) == 0 || (slot & kUnmapped) != 0) return nullptr;
    return mapping_->data() + (slot & kAddress) + (row % chunk_rows_) * image_bytes_;
  }
  // Checks the chunk of `row` against HDF5 (see above); then row() serves it if it can. Call with
  // hdf5_mutex() held.
  void check(H5File& f, std::uint64_t row) const;
  // Starts reading the checked chunks of rows [row0, row0 + rows) in the background.
  void prefetch(std::uint64_t row0, std::uint64_t rows) const;

  // Fills the slots: `previous`'s for the chunks it has, predictions after them.
  void fill(H5File& f, const ChunkMap* previous);

 private:
  static constexpr std::uint64_t kChecked = std::uint64_t{1} << 63;
  static constexpr std::uint64_t kUnmapped = std::uint64_t{1} << 62;
  static constexpr std::uint64_t kAddress = kUnmapped - 1;

  std::uint64_t chunk_bytes() const { return chunk_rows_ * image_bytes_; }
  // The exact address of chunk `c` from HDF5's index (slow: see above), or kUnmapped.
  std::uint64_t look_up(H5File& f, std::uint64_t c) const;
  // Predicts the unchecked chunks after `c` from its address, up to the next checked one.
  void predict_after(std::uint64_t c) const;

  std::shared_ptr<const Mapping> mapping_;
  std::uint64_t rows_;
  std::uint64_t chunk_rows_;
  std::uint64_t image_bytes_;
  mutable std::vector<std::atomic<std::uint64_t>> slots_;  // per chunk: address | kChecked | kUnmapped
};

// The chunk map of the first `rows` rows of f.images, reusing `previous` (of an earlier committed state) for
// the chunks it has; nullptr when the store is not served from a map (version 1, filtered /images, no mmap).
// Call with hdf5_mutex() held; may replace f.mapping with one of the grown file.
std::shared_ptr<const ChunkMap> map_chunks(H5File& f, std::uint64_t rows, const ChunkMap* previous);

}  // namespace imgstore::hdf5
