// The checksum stored with every image by the lmdb (value header, format 2) and hdf5 (/checksums, format 3)
// stores and verified on every read of its pixels:
//   checksum = XXH3-64(pixels, seed = id) XOR XXH3-64(id, label as two little-endian int64)
// The id and label are in it so that a label changed by a damaged byte, or a value found under the wrong key,
// fails the check as a damaged pixel does. Two terms joined by XOR so that a new label needs no pixel read:
// the hdf5 store relabels a committed row in place (relabelled()). In Python (python3-xxhash):
//   ok = xxhash.xxh3_64_intdigest(pixels, seed=id) ^ xxhash.xxh3_64_intdigest(struct.pack('<qq', id, label)) == stored
#pragma once

#include <xxhash.h>
#if defined(__x86_64__)
// libxxhash's runtime dispatch: XXH3 on AVX2 or AVX-512 where the CPU has them (the plain entry points are
// built for baseline SSE2, half the speed); the same hash on every CPU.
#include <xxh_x86dispatch.h>
#define IMGSTORE_XXH3_SEEDED XXH3_64bits_withSeed_dispatch
#else
#define IMGSTORE_XXH3_SEEDED XXH3_64bits_withSeed
#endif

#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>

#include "args.hpp"
#include "error.hpp"
#include "store.hpp"

namespace imgstore {

// The pixels' term: XXH3-64 seeded with the id.
inline std::uint64_t pixels_term(std::int64_t id, std::span<const std::uint8_t> pixels) noexcept {
  return IMGSTORE_XXH3_SEEDED(pixels.data(), pixels.size(), static_cast<std::uint64_t>(id));
}

// The label's term: XXH3-64 of (id, label) as two little-endian int64.
inline std::uint64_t label_term(std::int64_t id, std::int64_t label) noexcept {
  unsigned char key[16];
  for (int i = 0; i < 8; ++i) {
    key[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(id) >> (8 * i));
    key[8 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(label) >> (8 * i));
  }
  return XXH3_64bits(key, sizeof key);
}

inline std::uint64_t image_checksum(std::int64_t id, std::int64_t label, std::span<const std::uint8_t> pixels) noexcept {
  return pixels_term(id, pixels) ^ label_term(id, label);
}

// The shape's term, in a store of shape 'any' whose rows carry their shape: XXH3-64 of height, width and
// channels as three little-endian uint32. XOR'd into the checksum, so a damaged shape fails the check too.
inline std::uint64_t shape_term(const Shape& shape) noexcept {
  unsigned char dims[12];
  const std::uint32_t values[3] = {shape.height, shape.width, shape.channels};
  for (int d = 0; d < 3; ++d) {
    for (int i = 0; i < 4; ++i) dims[4 * d + i] = static_cast<unsigned char>(values[d] >> (8 * i));
  }
  return XXH3_64bits(dims, sizeof dims);
}

// The checksum of the same image after its label changes from `old_label` to `new_label`.
inline std::uint64_t relabelled(std::uint64_t checksum, std::int64_t id, std::int64_t old_label, std::int64_t new_label) noexcept {
  return checksum ^ label_term(id, old_label) ^ label_term(id, new_label);
}

// What `check` finds of these pixels: nullopt when they pass (or it checks nothing), else the checksum they
// have, for the error (damaged_image). The one place a PixelCheck (store.hpp) is made: every backend's read
// and the bulk reader's check of a copy.
inline std::optional<std::uint64_t> failed_check(const PixelCheck& check, std::int64_t id,
                                                 std::span<const std::uint8_t> pixels) noexcept {
  if (check.kind == PixelCheck::Kind::none) return std::nullopt;
  const std::uint64_t computed =
      check.kind == PixelCheck::Kind::image ? image_checksum(id, check.label, pixels) : pixels_term(id, pixels);
  if (computed == check.expected) return std::nullopt;
  return computed;
}

// "is damaged: its checksum does not match (stored 0x.., computed 0x..)", as errors and imgstore_check say it.
inline std::string checksum_mismatch(std::uint64_t stored, std::uint64_t computed) {
  char sums[112];
  std::snprintf(sums, sizeof sums, "is damaged: its checksum does not match (stored 0x%016llx, computed 0x%016llx)",
                static_cast<unsigned long long>(stored), static_cast<unsigned long long>(computed));
  return sums;
}

// The error for an image whose checksum does not match: never its bytes.
inline Error damaged_image(const std::string& table, std::int64_t id, const std::string& file, std::uint64_t stored,
                           std::uint64_t computed) {
  return Error("table " + table + ": image " + std::to_string(id) + " in '" + file + "' " +
                   checksum_mismatch(stored, computed),
               ErrorKind::corrupt);
}

// The `verify` argument of the lmdb and hdf5 modules: 1 (default) checks every image read, 0 serves the bytes
// unchecked.
inline bool verify_argument(const Args& args) { return args.integer("verify", 0, 1, 1) != 0; }

}  // namespace imgstore
