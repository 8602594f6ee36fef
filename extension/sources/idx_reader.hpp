// IDX files as used by MNIST and Fashion-MNIST (plain or gzip): an images file (magic 0x00000803: count,
// rows, cols of unsigned bytes) and a labels file (magic 0x00000801: count). Rows are (id, label, pixels)
// with shape rows x cols x 1 and ids 0.. in file order.
#pragma once

#include <memory>
#include <string>

#include "store.hpp"

namespace imgstore {

std::unique_ptr<Cursor> open_idx(const std::string& images, const std::string& labels);

// The shape the images file declares (reads its header only).
Shape idx_shape(const std::string& images);

}  // namespace imgstore
