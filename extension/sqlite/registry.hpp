// Everything the extension registers on a connection, in one list.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sqlite3ext.h"
#include "store.hpp"

namespace imgstore {

// Opens a store of any backend: args are key=value strings, one of them backend='lmdb'|'hdf5'|'png_dir'.
std::unique_ptr<Store> open_any_store(const std::string& table, const std::vector<std::string>& args,
                                      OpenMode mode = OpenMode::create_if_missing);

// Registers the store modules (lmdb, hdf5, png_dir), the sources and the scalar functions.
int register_all(sqlite3* db, char** err);

}  // namespace imgstore
