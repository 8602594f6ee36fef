// png_dir backend: a directory of one lossless PNG per image plus labels.csv, the way many data sets ship.
//
//   CREATE VIRTUAL TABLE t USING png_dir(path='train_png', shape='32x32x3' [, level=6]);
//
// labels.csv is the index: it says which ids exist and their labels; <id>.png holds the pixels. Commits are
// atomic through a commit record (see png_commit.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store.hpp"

namespace imgstore {

std::unique_ptr<Store> open_png_store(const std::string& table, const std::vector<std::string>& args,
                                      OpenMode mode = OpenMode::create_if_missing);

}  // namespace imgstore
