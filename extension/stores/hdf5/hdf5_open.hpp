// The opening of an hdf5 store's file (hdf5_open.cpp), shared with hdf5_file.cpp: private to the hdf5 backend.
#pragma once

#include <optional>
#include <string>

#include "hdf5_file.hpp"

namespace imgstore::hdf5 {

// How a file is opened. Version 1: read-only or read-write under HDF5's whole-file lock. Version 2: SWMR, the
// readers without HDF5's file lock (so that they never keep the writer out), the writer with it (so that a
// reader that takes the lock, such as h5py without swmr=True, keeps it out instead of reading a torn file).
// probe: SWMR read with the lock, to learn the version (a version 1 writer's lock keeps it out, as before).
enum class Access { v1_read, v1_write, probe, swmr_read, swmr_write };

// A dataset access property list with our chunk cache (kChunkCache), or `uncached`: 0 bytes, for unfiltered
// /images. No chunk fits, so HDF5 moves a selection's rows straight between the file, at the chunk's address in
// its index, and the caller's buffer: a random point read reads 3 KiB instead of a whole chunk into the cache
// (5 us instead of 38 us here), a scan's block of whole chunks is read without a copy.
Hid dataset_access(bool uncached = false);
// Opens dataset `name` with dataset_access(), uncached for unfiltered /images.
Hid open_with_cache(hid_t file, const char* name, const std::string& what);
// Opens the file for `access` and its datasets, checking their types, ranks and the stored shape (`wanted`).
void open_handles(H5File& f, const std::string& table, Access access, const std::optional<Shape>& wanted);
// The file's superblock version and recorded end (hdf5_format.hpp), read without HDF5 (and its file lock).
SuperblockHead read_superblock_head(const std::string& path);
// Opens a file read-only: probes its version, then reopens it as that version's readers do.
void open_reader(H5File& f, const std::string& table, const std::optional<Shape>& wanted);
// Makes the datasets of a new file (open read-write, f.shape set) and its attributes: version 2.
void create_layout(H5File& f, const std::string& table, const Compression& compression, std::uint64_t chunk);

}  // namespace imgstore::hdf5
