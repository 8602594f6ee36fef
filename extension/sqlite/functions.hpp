// Registers the scalar and aggregate SQL functions: png_encode, png_decode, png_shape, pixel_hash,
// image_digest, disk_usage, file_bytes, imgstore_version, ... and, through register_image_functions
// (image_functions.hpp), image_mean and image_grid.
#pragma once

#include "sqlite3ext.h"

namespace imgstore {

int register_functions(sqlite3* db);

// Registers imgstore_bulk_handle(table [, schema]) and imgstore_extension_path(), the SQL side of the bulk
// reader (bulk_read.h).
int register_bulk_functions(sqlite3* db);

}  // namespace imgstore
