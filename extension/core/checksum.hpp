// The checksum stored with every image by the lmdb (value header, format 2) and hdf5 (/checksums, format 3)
// stores and verified on every read of its pixels: XXH3-64 of the pixels, seeded with XXH3-64 of (id, label)
// as two little-endian int64. The id and label are in the seed so a label changed by a damaged byte, or a
// value found under the wrong key, fails the check as a damaged pixel does. In Python (python3-xxhash):
//   seed = xxhash.xxh3_64_intdigest(struct.pack('<qq', id, label))
//   ok = xxhash.xxh3_64_intdigest(pixels, seed=seed) == stored
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <span>
#include <string>

#include "args.hpp"
#include "error.hpp"

namespace imgstore {

inline std::uint64_t image_checksum(std::int64_t id, std::int64_t label, std::span<const std::uint8_t> pixels) noexcept {
  unsigned char key[16];
  for (int i = 0; i < 8; ++i) {
    key[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(id) >> (8 * i));
    key[8 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(label) >> (8 * i));
  }
  return XXH3_64bits_withSeed(pixels.data(), pixels.size(), XXH3_64bits(key, sizeof key));
}

// The `verify` argument of a store module whose images carry this checksum: 1 (the default) checks every image
// whose pixels a statement reads, and a mismatch is SQLITE_CORRUPT naming the image; 0 serves the stored bytes
// unchecked. imgstore_check(..., 1) checks them all either way.
inline bool verify_argument(const Args& args) {
  const auto text = args.get("verify");
  if (!text || *text == "1") return true;
  if (*text == "0") return false;
  throw Error("table " + args.table() + ": argument verify='" + *text +
              "' is not valid; expected 0 (serve pixels unchecked) or 1 (check each image's checksum, the default)");
}

}  // namespace imgstore
