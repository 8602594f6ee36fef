// What opening an hdf5 store's file (hdf5_open.cpp) shares with the rest of H5File: private to the backend.
#pragma once

#include <string>

#include "hdf5_file.hpp"

namespace imgstore::hdf5 {

// A dataset access property list with our chunk cache (kChunkCache), or `uncached`: 0 bytes, for unfiltered
// /images. No chunk fits, so HDF5 moves a selection's rows straight between the file, at the chunk's address in
// its index, and the caller's buffer: a random point read reads 3 KiB instead of a whole chunk into the cache
// (5 us instead of 38 us here), a scan's block of whole chunks is read without a copy.
Hid dataset_access(bool uncached = false);
// Opens dataset `name` with dataset_access(), uncached for unfiltered /images.
Hid open_with_cache(hid_t file, const char* name, const std::string& what);
// The file's superblock version and recorded end (hdf5_format.hpp), read without HDF5 (and its file lock).
SuperblockHead read_superblock_head(const std::string& path);

}  // namespace imgstore::hdf5
