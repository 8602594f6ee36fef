// LMDB backend: one environment per file per process (a refcounted registry keyed by device+inode), keys
// 8-byte big-endian ids in the named database "images" (so LMDB order is id order), values an 8-byte
// little-endian label followed by the pixels; "meta" holds format and shape. The map grows by itself.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store.hpp"

namespace imgstore {

// CREATE VIRTUAL TABLE t USING lmdb(path='x.lmdb' [, shape='32x32x3']).
std::unique_ptr<Store> open_lmdb_store(const std::string& table, const std::vector<std::string>& args,
                                      OpenMode mode = OpenMode::create_if_missing);

}  // namespace imgstore
