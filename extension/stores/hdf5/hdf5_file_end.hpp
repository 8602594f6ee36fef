// A file truncated under an open reader: HDF5 reads the bytes past the file's end as zeros (its sec2 driver
// fills a short read), so an uncompressed store would serve black images instead of failing, and an SWMR
// reader retries a damaged metadata read for seconds. Each committed state records where its last /images chunk
// ends in the file (its address from HDF5's chunk index); a cursor checks that the file still reaches that far
// before and after each read of /images. No legitimate change makes the file shorter than that: an unfiltered
// chunk never moves and a committed one is never freed; a filtered (gzip) partial chunk moves when a later
// transaction fills it, so for gzip the last whole chunk counts. A store replaced by rename keeps being read
// from the file this process opened, which is whole.
#pragma once

#include <cstdint>
#include <string>

namespace imgstore::hdf5 {

class H5File;

// The end (file address + size) of the last /images chunk of the first `rows` rows (a store of shape 'any':
// the first `rows` bytes, H5File::image_length; filtered: the last whole one); 0 when there is none or HDF5
// cannot say. Walks HDF5's chunk index up to that chunk (libhdf5 1.10 has no direct
// lookup of an address): once per committed state. Call with hdf5_mutex() held.
std::uint64_t images_end(const H5File& f, std::uint64_t rows);

// Error corrupt, naming the table and file, when the file HDF5 reads is now shorter than `end` (images_end of
// the committed state read). Call with hdf5_mutex() held, after the read it vouches for.
void require_file_reaches(const H5File& f, std::uint64_t end, const std::string& table);

}  // namespace imgstore::hdf5
