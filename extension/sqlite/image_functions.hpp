// Registers the aggregates of pixel maths over many images: image_mean(pixels, shape [, as_uint8]) and
// image_grid(pixels, shape, columns [, padding]). functions.cpp's register_functions calls it.
#pragma once

#include "sqlite3ext.h"

namespace imgstore {

int register_image_functions(sqlite3* db);

}  // namespace imgstore
