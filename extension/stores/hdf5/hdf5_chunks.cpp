// Direct chunk I/O with zlib on the pool (hdf5_chunks.hpp).
#include "hdf5_chunks.hpp"

#include <zlib.h>

#include "hdf5_file.hpp"

namespace imgstore::hdf5 {

StoredChunk deflate_chunk(std::span<const std::uint8_t> chunk, int level) {
  // HDF5's H5Z_filter_deflate: compress2 into nbytes * 1.001 + 12 bytes; when that fails, the optional filter
  // is skipped for the chunk (stored raw, mask bit 0).
  StoredChunk out;
  auto size = static_cast<uLongf>(static_cast<double>(chunk.size()) * 1.001 + 12.0 + 0.5);
  out.bytes.resize(size);
  if (compress2(out.bytes.data(), &size, chunk.data(), static_cast<uLong>(chunk.size()), level) == Z_OK) {
    out.bytes.resize(size);
    return out;
  }
  out.bytes.assign(chunk.begin(), chunk.end());
  out.mask = 1;
  return out;
}

std::vector<std::uint8_t> inflate_chunk(const StoredChunk& chunk, std::size_t expected, const std::string& what) {
  if ((chunk.mask & 1u) != 0) {
    if (chunk.bytes.size() != expected) {
      throw Error(what + ": an unfiltered chunk of " + std::to_string(chunk.bytes.size()) + " bytes; expected " +
                      std::to_string(expected),
                  ErrorKind::corrupt);
    }
    return chunk.bytes;
  }
  std::vector<std::uint8_t> out(expected);
  auto size = static_cast<uLongf>(expected);
  const int rc = uncompress(out.data(), &size, chunk.bytes.data(), static_cast<uLong>(chunk.bytes.size()));
  if (rc != Z_OK || size != expected) {
    throw Error(what + ": a gzip chunk does not inflate to " + std::to_string(expected) + " bytes (zlib error " +
                    std::to_string(rc) + ", damaged file)",
                ErrorKind::corrupt);
  }
  return out;
}

void ChunkWriter::submit(std::uint64_t index, std::shared_ptr<const std::vector<std::uint8_t>> block, std::size_t offset,
                         std::size_t bytes) {
  const int level = level_;
  if (pool_ == nullptr) {
    std::promise<StoredChunk> done;
    {
      // Only this store's own buffer is read meanwhile; another thread may use HDF5 (another shard's lane).
      const Unlocked unlocked(hdf5_mutex());
      done.set_value(deflate_chunk(std::span(block->data() + offset, bytes), level));
    }
    queue_.emplace_back(index, done.get_future());
    return;
  }
  queue_.emplace_back(index, pool_->submit([block = std::move(block), offset, bytes, level] {
    return deflate_chunk(std::span(block->data() + offset, bytes), level);
  }));
}

void ChunkWriter::write(H5File& f, bool all, const std::string& what) {
  while (!queue_.empty()) {
    auto& [index, future] = queue_.front();
    const bool must = all || queue_.size() > kMaxInFlight;
    if (!must && future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return;
    const StoredChunk chunk = future.get();
    const std::uint64_t at = index;
    queue_.pop_front();
    f.write_image_chunk(at, chunk.mask, chunk.bytes, what);
  }
}

void ChunkWriter::cancel() noexcept {
  for (auto& [index, future] : queue_) future.wait();
  queue_.clear();
}

ChunkReader::~ChunkReader() {
  for (auto& [index, future] : ahead_) future.wait();  // the tasks own their inputs; waited only to be tidy
}

StoredChunk read_stored_chunk(const H5File& f, std::uint64_t index, const std::string& what) {
  const hsize_t offset[4] = {index * f.chunk_rows(), 0, 0, 0};
  hsize_t stored = 0;
  checked(H5Dget_chunk_storage_size(f.images_id(), offset, &stored), what);
  StoredChunk raw;
  raw.bytes.resize(stored);
  checked(H5Dread_chunk(f.images_id(), H5P_DEFAULT, offset, &raw.mask, raw.bytes.data()), what);
  return raw;
}

const std::vector<std::uint8_t>& ChunkReader::chunk(const H5File& f, std::uint64_t index, std::uint64_t end,
                                                    const std::string& table) {
  if (index == current_index_) return current_;
  if (ahead_.empty() || ahead_.front().first != index) {  // not the next one: start reading ahead from here
    for (auto& [i, future] : ahead_) future.wait();
    ahead_.clear();
    next_ = index;
  }
  const std::size_t chunk_bytes = f.chunk_rows() * f.shape().bytes();
  while (ahead_.size() < window_ && next_ < end) {
    const std::string what = f.where(table) + ": reading chunk " + std::to_string(next_) + " of /images";
    auto raw = std::make_shared<StoredChunk>(read_stored_chunk(f, next_, what));
    ahead_.emplace_back(next_, pool_.submit([raw, chunk_bytes, what] { return inflate_chunk(*raw, chunk_bytes, what); }));
    ++next_;
  }
  // Taken off the queue before get(): a chunk that fails to inflate throws here, and its spent future must not
  // stay queued (waiting on it again would throw std::future_error, in the destructor too).
  std::future<std::vector<std::uint8_t>> front = std::move(ahead_.front().second);
  ahead_.pop_front();
  current_index_ = ~std::uint64_t{0};
  current_ = front.get();
  current_index_ = index;
  return current_;
}

}  // namespace imgstore::hdf5
