// dataset(name, n): the experiments' data sets by name, n images long, ids 0..n-1.
//   'fashion-mnist'      Debian's Fashion-MNIST training images (28x28x1), the first 50,000, repeated past that
//   'smooth' | 'noise'   synthetic 32x32x3 images (see synthetic.hpp), seed 1
//   a directory          a CIFAR-10 binary directory (cifar-10-batches-bin): its 50,000 training images,
//                        repeated past that
// Repeating the 50,000 training images to reach 100,000 is what the original comparison did.
#pragma once

#include <memory>
#include <string>

#include "store.hpp"

namespace imgstore {

inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist/";
inline constexpr std::int64_t dataset_base = 50000;

std::unique_ptr<Cursor> open_dataset(const std::string& name, std::int64_t n);
Shape dataset_shape(const std::string& name);

}  // namespace imgstore
