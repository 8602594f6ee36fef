// The row digest behind image_digest(): XXH64 of the pixels, seeded with XXH64 of (id, label) as two
// little-endian int64; a table's digest is the sum of its rows' digests mod 2^64 (order-independent).
// Shared by the SQL function and the raw C baselines so both verify against the same number.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

namespace imgstore {

inline std::uint64_t row_digest(std::int64_t id, std::int64_t label, std::span<const std::uint8_t> pixels) {
  unsigned char key[16];
  for (int i = 0; i < 8; ++i) {
    key[i] = static_cast<unsigned char>(static_cast<std::uint64_t>(id) >> (8 * i));
    key[8 + i] = static_cast<unsigned char>(static_cast<std::uint64_t>(label) >> (8 * i));
  }
  return XXH64(pixels.data(), pixels.size(), XXH64(key, sizeof key, 0));
}

// The text image_digest() returns: "count:16 hex digits".
inline std::string digest_text(std::uint64_t count, std::uint64_t sum) {
  char text[48];
  std::snprintf(text, sizeof text, "%llu:%016llx", static_cast<unsigned long long>(count), static_cast<unsigned long long>(sum));
  return text;
}

}  // namespace imgstore
