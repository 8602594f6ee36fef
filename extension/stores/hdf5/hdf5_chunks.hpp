// Direct chunk I/O for gzip stores: whole /images chunks are compressed and decompressed with zlib on the
// store's ThreadPool (threads > 1) or on the calling thread with hdf5_mutex() released (threads = 1: the
// shards of a sharded table, each on its own lane, then compress at once), while every HDF5 call (H5Dwrite_chunk, H5Dread_chunk) stays on the calling
// thread under hdf5_mutex() (Debian's libhdf5 says it is thread-safe, but that is one global lock inside it:
// nothing to gain, and we do not rely on it). The bytes are what HDF5's deflate filter writes (zlib's
// compress2 at the store's level, a zlib stream; a chunk that does not shrink enough is stored unfiltered with
// filter mask bit 0, as HDF5 does for the optional deflate filter), so h5py and HDF5 read them as usual.
// Only chunks a block of new rows fills whole are written directly; a partial chunk (the ends of a block that
// does not start or end on a chunk boundary) goes through H5Dwrite and HDF5's own filter.
#pragma once

#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "thread_pool.hpp"

namespace imgstore::hdf5 {

class H5File;

// One chunk as stored: its bytes and HDF5's filter mask (bit 0 set: deflate skipped, the bytes are raw).
struct StoredChunk {
  std::vector<std::uint8_t> bytes;
  std::uint32_t mask = 0;
};

// What HDF5's deflate filter stores for `chunk` at zlib `level`.
StoredChunk deflate_chunk(std::span<const std::uint8_t> chunk, int level);
// The chunk's pixels (`expected` bytes); Error corrupt (naming `what`) when they do not inflate to that size.
std::vector<std::uint8_t> inflate_chunk(const StoredChunk& chunk, std::size_t expected, const std::string& what);

// Chunk `index` of /images as stored (H5Dread_chunk). Call with hdf5_mutex() held.
StoredChunk read_stored_chunk(const H5File& f, std::uint64_t index, const std::string& what);

// A transaction's whole chunks, compressed on the pool (or here, without one) and written in order on the
// calling thread.
class ChunkWriter {
 public:
  ChunkWriter(ThreadPool* pool, int level) : pool_(pool), level_(level) {}
  ~ChunkWriter() { cancel(); }
  ChunkWriter(const ChunkWriter&) = delete;
  ChunkWriter& operator=(const ChunkWriter&) = delete;

  // Compresses chunk number `index` of /images: `bytes` of `block` from `offset` (the block is shared by its
  // chunks and freed when the last is compressed). Without a pool it compresses now, with hdf5_mutex() (held
  // once by the caller) released meanwhile.
  void submit(std::uint64_t index, std::shared_ptr<const std::vector<std::uint8_t>> block, std::size_t offset,
              std::size_t bytes);
  // Writes the compressed chunks at the front: those done, or (all) every one, waiting. Also waits while more
  // than `kMaxInFlight` are queued, so memory stays bounded. Call with hdf5_mutex() held.
  void write(H5File& f, bool all, const std::string& what);
  // Waits for and drops every queued chunk (a rollback); never throws.
  void cancel() noexcept;
  bool empty() const { return queue_.empty(); }

  static constexpr std::size_t kMaxInFlight = 64;

 private:
  ThreadPool* const pool_;
  const int level_;
  std::deque<std::pair<std::uint64_t, std::future<StoredChunk>>> queue_;
};

// A scan's chunks: read raw on the calling thread, decompressed ahead on the pool, a bounded window of them.
class ChunkReader {
 public:
  ChunkReader(ThreadPool& pool, std::size_t window) : pool_(pool), window_(window) {}
  ~ChunkReader();
  ChunkReader(const ChunkReader&) = delete;
  ChunkReader& operator=(const ChunkReader&) = delete;

  // The pixels of chunk `index` of /images, reading ahead up to the window, below chunk `end`. Call with
  // hdf5_mutex() held.
  const std::vector<std::uint8_t>& chunk(const H5File& f, std::uint64_t index, std::uint64_t end, const std::string& table);
  std::uint64_t current() const { return current_index_; }

 private:
  ThreadPool& pool_;
  const std::size_t window_;
  std::deque<std::pair<std::uint64_t, std::future<std::vector<std::uint8_t>>>> ahead_;
  std::uint64_t next_ = 0;  // the next chunk to read
  std::uint64_t current_index_ = ~std::uint64_t{0};
  std::vector<std::uint8_t> current_;
};

}  // namespace imgstore::hdf5
