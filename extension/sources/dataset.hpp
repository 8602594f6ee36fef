// dataset(source, n [, every]): n images with ids 0..n-1 from one source, started over every `every` rows
// (0: whenever the source ends). The source is
//   a directory of IDX files    train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] (MNIST, Fashion-MNIST)
//   a CIFAR-10 binary directory cifar-10-batches-bin (its training batches)
//   'smooth' | 'noise'          synthetic 32x32x3 images (see synthetic.hpp), seed 1
// Which data sets the experiments use, where they live and how often they repeat is the experiments' choice
// (sql/, imgbench report), not the extension's.
#pragma once

#include <memory>
#include <string>

#include "store.hpp"

namespace imgstore {

std::unique_ptr<Cursor> open_dataset(const std::string& source, std::int64_t n, std::int64_t every = 0);
Shape dataset_shape(const std::string& source);

}  // namespace imgstore
