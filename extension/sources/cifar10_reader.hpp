// CIFAR-10 (and CIFAR-100) binary batches: records of label byte(s) + 3,072 bytes of R, G, B planes of
// 32x32 row-major. Rows come out as (id, label, pixels) with pixels converted to HWC order.
#pragma once

#include <memory>
#include <string>

#include "store.hpp"

namespace imgstore {

struct CifarOptions {
  std::string path;               // a batch file, or a cifar-10-batches-bin directory
  std::int64_t id_offset = 0;     // id of the first record
  std::string split = "train";    // directory only: 'train' (data_batch_*.bin), 'test' (test_batch.bin), 'all'
  std::string format = "cifar10"; // 'cifar10' (1 label byte) or 'cifar100' (coarse byte, fine byte: fine is used)
};

std::unique_ptr<Cursor> open_cifar(const CifarOptions& options);

inline constexpr std::size_t cifar_pixels = 32 * 32 * 3;

}  // namespace imgstore
