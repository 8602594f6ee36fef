// The on-disk layout of an lmdb store, pure (no LMDB calls, no file I/O), so the store, the benchmarks' raw
// baselines, the tests and the fuzzer share one definition of it. Two versions; a store keeps the version it
// was made with, and `INSERT INTO new SELECT * FROM old` converts an old one.
//
// Format 2, "imgstore-lmdb 2" (every store made since): an LMDB environment directory in LMDB's own default
// layout, so mdb_stat, mdb_dump and py-lmdb open it with their defaults:
//   x.lmdb/data.mdb    LMDB's data file
//   x.lmdb/lock.mdb    LMDB's lock file (its reader table: no data, remade by LMDB when missing)
//   x.lmdb/.imgstore   the store's description, two lines of ASCII written once, when the store is made:
//                        "imgstore-lmdb 2\n"
//                        "shape=HxWxC\n"        (e.g. shape=32x32x3: positive decimal integers, H*W*C <= 64 MiB)
//   LMDB's main (unnamed) database holds the images and nothing else, one entry per image:
//     key    8 bytes   the id, big-endian two's complement (ids are >= 0, so LMDB's memcmp order is id order)
//     value  16 + H*W*C bytes:
//            0..7      the label, little-endian two's complement
//            8..15     the checksum, little-endian unsigned: image_checksum(id, label, pixels) (core/checksum.hpp:
//                      XXH3-64 of the pixels seeded with the id, XOR XXH3-64 of the 16 bytes id, label as
//                      little-endian int64), verified on every read that serves the pixels
//            16..      the pixels, uint8, row-major HWC (row by row, each pixel's channels together)
//   A store of shape 'any' (shape=any in .imgstore: images of many sizes) puts each image's shape between the
//   checksum and the pixels, and its checksum covers the shape too:
//     value  32 + H*W*C bytes:
//            0..7      the label, as above
//            8..15     the checksum: image_checksum(id, label, pixels) XOR shape_term(shape) (core/checksum.hpp:
//                      XXH3-64 of height, width, channels as three little-endian uint32)
//            16..27    height, width, channels: little-endian uint32 each (channels 1..4)
//            28..31    zero
//            32..      the pixels, uint8, HWC
//   In Python: h, w, c = struct.unpack('<III', v[16:28]); numpy.frombuffer(v, numpy.uint8, offset=32).reshape(h, w, c)
//   Why the description is a file and not a key or a named database: mdb_stat's entry count is then the image
//   count, a cursor over the main database yields images only (every key 8 bytes, every value the layout above),
//   and py-lmdb's lmdb.open(path, readonly=True) needs no max_dbs. A store is made whole in a temporary
//   directory beside it (data.mdb's meta pages written by LMDB and fsynced, .imgstore written and fsynced, the
//   directory fsynced) and renamed into place with RENAME_NOREPLACE: after a crash the path holds a complete store or nothing, and of
//   two processes creating one path, one makes it and the other opens what it made.
//   In Python:
//     env = lmdb.open('x.lmdb', readonly=True)
//     v = env.begin().get(struct.pack('>q', 7))                    # image 7, or None
//     label, checksum = struct.unpack('<qQ', v[:16])
//     pixels = numpy.frombuffer(v, numpy.uint8, offset=16).reshape(32, 32, 3)
//
// Format 1, "imgstore-lmdb 1" (stores made by earlier versions): one LMDB data file opened MDB_NOSUBDIR, `x.lmdb`,
// with its lock file `x.lmdb-lock` beside it; the named database "images" holds the entries (key as above, value
// = the label, 8 bytes little-endian, then the pixels: no checksum), the named database "meta" holds "format" ->
// "imgstore-lmdb 1" and "shape" -> "HxWxC". It still opens, reads and writes, in format 1.
//
// Temporaries beside a store, each held by its maker with a flock and removed by the next open or compaction that
// finds it abandoned (unlocked, and a directory holding nothing but data.mdb, lock.mdb and .imgstore):
//   x.lmdb.imgstore-new-<pid>-<n>/  a format-2 store being made (renamed to x.lmdb when complete)
//   x.lmdb.imgstore-compact/        format 2: the compacted copy being made; after the swap, the old store
//   x.lmdb.imgstore-compact         format 1: the compacted copy of the data file (renamed over x.lmdb)
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "shape.hpp"

namespace imgstore::lmdb_format {

enum class Version { v1 = 1, v2 = 2 };

// Format 2.
inline constexpr const char* format_tag = "imgstore-lmdb 2";
inline constexpr const char* data_file = "data.mdb";
inline constexpr const char* lock_file = "lock.mdb";
inline constexpr const char* meta_file = ".imgstore";
inline constexpr const char* compact_suffix = ".imgstore-compact";
inline constexpr const char* new_infix = ".imgstore-new-";

// Format 1.
inline constexpr const char* v1_format_tag = "imgstore-lmdb 1";
inline constexpr const char* v1_images_db = "images";
inline constexpr const char* v1_meta_db = "meta";
inline constexpr const char* v1_lock_suffix = "-lock";

inline constexpr std::size_t key_bytes = 8;
inline constexpr std::size_t label_bytes = 8;
inline constexpr std::size_t checksum_bytes = 8;

inline constexpr std::size_t shape_bytes = 16;  // a store of shape 'any': three uint32 and four zero bytes

// The bytes before the pixels in a value: the label, in format 2 the checksum, in a store of shape 'any' the
// image's shape.
constexpr std::size_t header_bytes(Version v, bool any = false) {
  return (v == Version::v1 ? label_bytes : label_bytes + checksum_bytes) + (any ? shape_bytes : 0);
}
// The size of a value holding an image of `pixel_bytes`.
constexpr std::size_t value_bytes(Version v, std::size_t pixel_bytes, bool any = false) {
  return header_bytes(v, any) + pixel_bytes;
}

void encode_key(std::int64_t id, unsigned char out[key_bytes]) noexcept;
std::int64_t decode_key(const unsigned char in[key_bytes]) noexcept;
void encode_label(std::int64_t label, unsigned char out[label_bytes]) noexcept;
std::int64_t decode_label(const unsigned char in[label_bytes]) noexcept;

// A value taken apart: views into its bytes.
struct Value {
  std::int64_t label = 0;
  std::optional<std::uint64_t> checksum;  // format 2
  std::span<const std::uint8_t> pixels;
  bool any = false;  // of a store of shape 'any': `shape` is the one the value records
  Shape shape;
};

// nullopt when `value` is not value_bytes(v, pixel_bytes) long.
std::optional<Value> decode_value(Version v, std::span<const std::uint8_t> value, std::size_t pixel_bytes) noexcept;
// The value of an image in a store of `shape`: for 'any', nullopt unless its recorded shape is sound and
// matches its length.
std::optional<Value> decode_value(Version v, std::span<const std::uint8_t> value, const Shape& shape) noexcept;
// Writes the value of image (id, label, pixels) into `out`, value_bytes(v, pixels.size()) bytes (format 2 computes
// the checksum). `out` may not overlap `pixels`.
void encode_value(Version v, std::int64_t id, std::int64_t label, std::span<const std::uint8_t> pixels,
                  std::span<std::uint8_t> out) noexcept;
// The same for an image of shape `image` in a store of shape `store` (which may be 'any'): value_bytes(v,
// image.bytes(), store.any) bytes.
void encode_value(Version v, const Shape& store, std::int64_t id, std::int64_t label, const Shape& image,
                  std::span<const std::uint8_t> pixels, std::span<std::uint8_t> out) noexcept;
// What the value's stored checksum must be: image_checksum of its image under `id`, and the shape's term in a
// store of shape 'any'.
std::uint64_t expected_checksum(std::int64_t id, const Value& value) noexcept;
// The part of a format-2 value's stored checksum that image_checksum(id, label, pixels) must equal (the shape's
// term taken out), for a PixelCheck.
std::uint64_t pixel_checksum(const Value& value) noexcept;
// Rewrites the label of the format-2 or format-1 value `value` (value_bytes long) of image `id` in place, its
// checksum with it (relabelled(): no pixel read, and a damaged image stays as damaged as it was).
void relabel_value(Version v, std::int64_t id, std::int64_t label, std::span<std::uint8_t> value) noexcept;

// .imgstore's text for a store of `shape`.
std::string meta_text(const Shape& shape);
// The shape .imgstore records; Error(corrupt) naming `what` when the text is not exactly meta_text of a shape.
Shape parse_meta(std::string_view text, const std::string& what);

}  // namespace imgstore::lmdb_format
