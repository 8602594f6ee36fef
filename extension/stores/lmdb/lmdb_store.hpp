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

namespace lmdb_format {
inline constexpr const char* images_db = "images";
inline constexpr const char* meta_db = "meta";
inline constexpr const char* format_tag = "imgstore-lmdb 1";
inline constexpr std::size_t label_bytes = 8;
void encode_key(std::int64_t id, unsigned char out[8]) noexcept;
std::int64_t decode_key(const unsigned char in[8]) noexcept;
}  // namespace lmdb_format

// How many LMDB environments this process holds open (for tests of the registry).
std::size_t lmdb_open_environments();

}  // namespace imgstore
