// Reading committed /images rows straight from a read-only mmap of the file: HDF5 stays the writer and the
// format is unchanged, but a point read or scan of an unfiltered store costs a pointer instead of an H5Dread
// (about 2 us of HDF5's per-call work each). The chunk addresses come from HDF5 once per committed state,
// incrementally: an unfiltered chunk, once allocated, never moves, and a commit only appends rows, so the
// addresses of the chunks a state names stay valid for as long as a cursor holds that state (rows past the
// committed count, whose chunks a rollback may free, are never served from the map).
//
// Used for version 2 files only (SWMR: no other process rewrites the file under a reader; version 1 files keep
// the old path, read under HDF5's lock). Filtered chunks (gzip) are read through HDF5 (hdf5_chunks.hpp).
#pragma once

#include <hdf5.h>

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

// The file address of every /images chunk that holds committed rows, over one mapping.
class ChunkMap {
 public:
  ChunkMap(std::shared_ptr<const Mapping> mapping, std::vector<haddr_t> addresses, std::uint64_t chunk_rows,
           std::uint64_t image_bytes)
      : mapping_(std::move(mapping)), addresses_(std::move(addresses)), chunk_rows_(chunk_rows), image_bytes_(image_bytes) {}

  // The pixels of `row` in the mapping, or nullptr (not mapped: read it through HDF5).
  const std::uint8_t* row(std::uint64_t row) const {
    const std::uint64_t chunk = row / chunk_rows_;
    if (chunk >= addresses_.size() || addresses_[chunk] == HADDR_UNDEF) return nullptr;
    const std::uint64_t at = addresses_[chunk] + (row % chunk_rows_) * image_bytes_;
    if (at + image_bytes_ > mapping_->size()) return nullptr;
    return mapping_->data() + at;
  }
  // Starts reading the chunks of rows [row0, row0 + rows) in the background.
  void prefetch(std::uint64_t row0, std::uint64_t rows) const;

  const std::shared_ptr<const Mapping>& mapping() const { return mapping_; }
  const std::vector<haddr_t>& addresses() const { return addresses_; }

 private:
  std::shared_ptr<const Mapping> mapping_;
  std::vector<haddr_t> addresses_;  // per chunk; HADDR_UNDEF: not allocated (read through HDF5)
  std::uint64_t chunk_rows_;
  std::uint64_t image_bytes_;
};

// The chunk map of the first `rows` rows of f.images, reusing `previous` (of an earlier committed state) for
// the chunks it has; nullptr when the store is not served from a map (version 1, filtered /images, no mmap).
// Call with hdf5_mutex() held; may replace f.mapping with one of the grown file.
std::shared_ptr<const ChunkMap> map_chunks(H5File& f, std::uint64_t rows, const ChunkMap* previous);

}  // namespace imgstore::hdf5
