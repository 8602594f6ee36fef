// The truncation check of hdf5_file_end.hpp.
#include "hdf5_file_end.hpp"

#include <sys/stat.h>

#include "hdf5_file.hpp"

namespace imgstore::hdf5 {

std::uint64_t images_end(const H5File& f, std::uint64_t rows) {
  // A filtered partial chunk moves when a later transaction fills it: the last whole chunk then.
  const std::uint64_t chunks = f.filters() == 0 ? (rows + f.chunk_rows() - 1) / f.chunk_rows() : rows / f.chunk_rows();
  if (chunks == 0 || f.images_id() < 0) return 0;
  const hsize_t offset[4] = {(chunks - 1) * f.chunk_rows(), 0, 0, 0};
  unsigned mask = 0;
  haddr_t address = HADDR_UNDEF;
  hsize_t size = 0;
  if (H5Dget_chunk_info_by_coord(f.images_id(), offset, &mask, &address, &size) < 0 || address == HADDR_UNDEF) {
    H5Eclear2(H5E_DEFAULT);
    return 0;  // unchecked: reads go on as HDF5 serves them
  }
  return address + size;
}

void require_file_reaches(const H5File& f, std::uint64_t end, const std::string& table) {
  if (end == 0) return;
  void* handle = nullptr;
  struct stat st{};
  // The descriptor HDF5 reads through (sec2), not the path: a file renamed over ours is not the one read.
  if (H5Fget_vfd_handle(f.file_id(), H5P_DEFAULT, &handle) < 0 || handle == nullptr ||
      ::fstat(*static_cast<const int*>(handle), &st) != 0) {
    H5Eclear2(H5E_DEFAULT);
    return;
  }
  if (static_cast<std::uint64_t>(st.st_size) < end) {
    throw Error(f.where(table) + " is " + std::to_string(st.st_size) + " bytes; its committed images end at byte " +
                    std::to_string(end) + " (the file was truncated while open; reopen the table once it is restored)",
                ErrorKind::corrupt);
  }
}

}  // namespace imgstore::hdf5
