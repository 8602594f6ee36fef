// The mmap reader of hdf5_mapped.hpp.
#include "hdf5_mapped.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "hdf5_file.hpp"
#include "posix_file.hpp"

namespace imgstore::hdf5 {

std::shared_ptr<const Mapping> Mapping::open(const std::string& path) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st{};
  if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_size <= 0) return nullptr;
  const auto size = static_cast<std::size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return nullptr;
  return std::make_shared<const Mapping>(static_cast<const std::uint8_t*>(p), size);
}

Mapping::~Mapping() { ::munmap(const_cast<std::uint8_t*>(data_), size_); }

void Mapping::prefetch(std::uint64_t offset, std::uint64_t bytes) const {
  static const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  if (offset >= size_) return;
  const std::uint64_t begin = offset / page * page;
  const std::uint64_t end = std::min<std::uint64_t>(offset + bytes, size_);
  ::madvise(const_cast<std::uint8_t*>(data_) + begin, end - begin, MADV_WILLNEED);  // a hint: failure is harmless
}

ChunkMap::ChunkMap(std::shared_ptr<const Mapping> mapping, std::uint64_t rows, std::uint64_t chunk_rows,
                   std::uint64_t image_bytes)
    : mapping_(std::move(mapping)),
      rows_(rows),
      chunk_rows_(chunk_rows),
      image_bytes_(image_bytes),
      slots_((rows + chunk_rows - 1) / chunk_rows) {}

std::uint64_t ChunkMap::look_up(H5File& f, std::uint64_t c) const {
  const hsize_t offset[4] = {c * chunk_rows_, 0, 0, 0};
  unsigned mask = 0;
  haddr_t address = HADDR_UNDEF;
  hsize_t size = 0;
  if (H5Dget_chunk_info_by_coord(f.images.get(), offset, &mask, &address, &size) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return kUnmapped;
  }
  if (mask != 0 || size != chunk_bytes() || address == HADDR_UNDEF || address == 0 ||
      address + chunk_bytes() > mapping_->size()) {
    return kUnmapped;
  }
  return address;
}

void ChunkMap::predict_after(std::uint64_t c) const {
  const std::uint64_t base = slots_[c].load(std::memory_order_relaxed) & kAddress;
  for (std::uint64_t k = c + 1; k < slots_.size(); ++k) {
    if ((slots_[k].load(std::memory_order_relaxed) & kChecked) != 0) break;
    slots_[k].store(base + (k - c) * chunk_bytes(), std::memory_order_relaxed);
  }
}

void ChunkMap::fill(H5File& f, const ChunkMap* previous) {
  std::uint64_t c = 0;
  if (previous != nullptr) {
    const std::uint64_t kept = std::min(previous->slots_.size(), slots_.size());
    for (; c < kept; ++c) slots_[c].store(previous->slots_[c].load(std::memory_order_acquire), std::memory_order_relaxed);
    // Its last chunk, checked over fewer rows, is checked again over this state's rows.
    if (kept > 0 && previous->rows_ % chunk_rows_ != 0) {
      slots_[kept - 1].store(slots_[kept - 1].load(std::memory_order_relaxed) & ~kChecked, std::memory_order_relaxed);
    }
  }
  if (c == 0 && !slots_.empty()) {
    slots_[0].store(look_up(f, 0) | kChecked, std::memory_order_relaxed);  // the first chunk: cheap to look up
    c = 1;
  }
  // From the last chunk with an address on: predictions (an unmapped one leaves the rest to check()).
  if (c > 0 && c < slots_.size() && (slots_[c - 1].load(std::memory_order_relaxed) & kUnmapped) == 0) predict_after(c - 1);
}

void ChunkMap::check(H5File& f, std::uint64_t row) const {
  const std::uint64_t c = row / chunk_rows_;
  if (c >= slots_.size()) return;
  const std::uint64_t slot = slots_[c].load(std::memory_order_acquire);
  if ((slot & kChecked) != 0) return;
  const std::uint64_t predicted = slot & kAddress;
  const std::uint64_t bytes = std::min(chunk_rows_, rows_ - c * chunk_rows_) * image_bytes_;  // its committed rows
  bool right = false;
  if (predicted != 0 && predicted + chunk_bytes() <= mapping_->size()) {
    std::vector<std::uint8_t> stored(chunk_bytes());
    const hsize_t offset[4] = {c * chunk_rows_, 0, 0, 0};
    std::uint32_t mask = 0;
    if (H5Dread_chunk(f.images.get(), H5P_DEFAULT, offset, &mask, stored.data()) >= 0) {
      right = mask == 0 && std::memcmp(stored.data(), mapping_->data() + predicted, bytes) == 0;
    } else {
      H5Eclear2(H5E_DEFAULT);
    }
  }
  if (right) {
    slots_[c].store(predicted | kChecked, std::memory_order_release);
    return;
  }
  const std::uint64_t exact = look_up(f, c);
  slots_[c].store(exact | kChecked, std::memory_order_release);
  if ((exact & kUnmapped) == 0) predict_after(c);
}

void ChunkMap::prefetch(std::uint64_t row0, std::uint64_t rows) const {
  if (rows == 0) return;
  std::uint64_t c = row0 / chunk_rows_;
  const std::uint64_t last = std::min<std::uint64_t>((row0 + rows - 1) / chunk_rows_ + 1, slots_.size());
  // Chunks written one after another lie one after another: one hint per contiguous run.
  while (c < last) {
    const std::uint64_t slot = slots_[c].load(std::memory_order_relaxed);
    if ((slot & kUnmapped) != 0 || (slot & kAddress) == 0) {
      ++c;
      continue;
    }
    const std::uint64_t start = slot & kAddress;
    std::uint64_t end = start + chunk_bytes();
    while (++c < last && (slots_[c].load(std::memory_order_relaxed) & (kAddress | kUnmapped)) == end) end += chunk_bytes();
    mapping_->prefetch(start, end - start);
  }
}

std::shared_ptr<const ChunkMap> map_chunks(H5File& f, std::uint64_t rows, const ChunkMap* previous) {
  if (f.version != 2 || f.filters != 0 || !f.images) return nullptr;
  struct stat st{};
  if (!f.mapping || (::stat(f.path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) > f.mapping->size())) {
    f.mapping = Mapping::open(f.path);  // the grown file: chunks past the old mapping's end
  }
  if (!f.mapping) return nullptr;
  auto map = std::make_shared<ChunkMap>(f.mapping, rows, f.chunk_rows, f.shape.bytes());
  map->fill(f, previous);
  return map;
}

}  // namespace imgstore::hdf5
