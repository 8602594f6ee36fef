// The mmap reader of hdf5_mapped.hpp.
#include "hdf5_mapped.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

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

void ChunkMap::prefetch(std::uint64_t row0, std::uint64_t rows) const {
  if (rows == 0) return;
  const std::uint64_t chunk_bytes = chunk_rows_ * image_bytes_;
  std::uint64_t c = row0 / chunk_rows_;
  const std::uint64_t last = std::min<std::uint64_t>((row0 + rows - 1) / chunk_rows_ + 1, addresses_.size());
  // Chunks written one after another lie one after another: one hint per contiguous run.
  while (c < last) {
    if (addresses_[c] == HADDR_UNDEF) {
      ++c;
      continue;
    }
    const haddr_t start = addresses_[c];
    haddr_t end = start + chunk_bytes;
    while (++c < last && addresses_[c] == end) end += chunk_bytes;
    mapping_->prefetch(start, end - start);
  }
}

std::shared_ptr<const ChunkMap> map_chunks(H5File& f, std::uint64_t rows, const ChunkMap* previous) {
  if (f.version != 2 || f.filters != 0 || !f.images) return nullptr;
  const std::uint64_t chunk_bytes = f.chunk_rows * f.shape.bytes();
  const std::uint64_t chunks = (rows + f.chunk_rows - 1) / f.chunk_rows;
  std::vector<haddr_t> addresses;
  addresses.reserve(chunks);
  if (previous != nullptr) {
    const auto& old = previous->addresses();
    addresses.assign(old.begin(), old.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(old.size(), chunks)));
  }
  std::uint64_t end = 0;
  for (std::uint64_t c = 0; c < chunks; ++c) {
    if (c >= addresses.size()) addresses.push_back(HADDR_UNDEF);
    if (addresses[c] == HADDR_UNDEF) {
      const hsize_t offset[4] = {c * f.chunk_rows, 0, 0, 0};
      unsigned mask = 0;
      haddr_t address = HADDR_UNDEF;
      hsize_t size = 0;
      if (H5Dget_chunk_info_by_coord(f.images.get(), offset, &mask, &address, &size) < 0) {
        H5Eclear2(H5E_DEFAULT);
        address = HADDR_UNDEF;
      }
      if (mask != 0 || size != chunk_bytes) address = HADDR_UNDEF;
      addresses[c] = address;
    }
    if (addresses[c] != HADDR_UNDEF) end = std::max<std::uint64_t>(end, addresses[c] + chunk_bytes);
  }
  if (!f.mapping || end > f.mapping->size()) f.mapping = Mapping::open(f.path);
  if (!f.mapping) return nullptr;
  return std::make_shared<const ChunkMap>(f.mapping, std::move(addresses), f.chunk_rows, f.shape.bytes());
}

}  // namespace imgstore::hdf5
