// HDF5 backend: datasets /images (N,H,W,C) uint8, /labels (N) int64, /ids (N) int64, chunked and extendible;
// root attributes imgstore_format, shape and rows (the committed row count). A store of shape 'any' holds
// images of many sizes in a 1-D /images with /offsets and /shapes (hdf5_format.hpp).
//
//   CREATE VIRTUAL TABLE t USING hdf5(path='x.h5', shape='32x32x3' [, compression='gzip:4'|'none', chunk=N]);
//   CREATE VIRTUAL TABLE t USING hdf5(path='x.h5', shape='any' [, compression=..., chunk=BYTES]);
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store.hpp"

namespace imgstore {

std::unique_ptr<Store> open_hdf5_store(const std::string& table, const std::vector<std::string>& args,
                                      OpenMode mode = OpenMode::create_if_missing);

}  // namespace imgstore
