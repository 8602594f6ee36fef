// The on-disk layout of an lmdb store, pure (no LMDB calls), so tools, benchmarks and tests share it:
//   an LMDB environment opened MDB_NOSUBDIR: `path` is the data file, `path-lock` its lock file;
//   named database "images": key = the id as 8 bytes big-endian (memcmp order is id order), value = the label
//     as 8 bytes little-endian signed, then height*width*channels pixel bytes (HWC);
//   named database "meta": "format" -> "imgstore-lmdb 1", "shape" -> e.g. "32x32x3".
// py-lmdb reads it: v = txn.get(struct.pack('>q', id), db=images); struct.unpack('<q', v[:8]); v[8:].
#pragma once

#include <cstddef>
#include <cstdint>

namespace imgstore::lmdb_format {

inline constexpr const char* images_db = "images";
inline constexpr const char* meta_db = "meta";
inline constexpr const char* format_tag = "imgstore-lmdb 1";
inline constexpr std::size_t key_bytes = 8;
inline constexpr std::size_t label_bytes = 8;

void encode_key(std::int64_t id, unsigned char out[key_bytes]) noexcept;
std::int64_t decode_key(const unsigned char in[key_bytes]) noexcept;
void encode_label(std::int64_t label, unsigned char out[label_bytes]) noexcept;
std::int64_t decode_label(const unsigned char in[label_bytes]) noexcept;
// The size of a value holding an image of `pixel_bytes`.
inline constexpr std::size_t value_bytes(std::size_t pixel_bytes) { return label_bytes + pixel_bytes; }

}  // namespace imgstore::lmdb_format
