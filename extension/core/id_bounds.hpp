// Integer bounds from SQL comparison values, as SQLite compares an INTEGER id with a REAL: exactly, not
// through a rounded conversion. Pure and SQLite-free, so the unit tests pin every edge (2^63, -2^63, NaN).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>

namespace imgstore {

inline constexpr std::int64_t kIdMax = std::numeric_limits<std::int64_t>::max();
inline constexpr std::int64_t kIdMin = std::numeric_limits<std::int64_t>::min();
// 2^63: the first double above every int64. Doubles below it and above -2^63 are either integers or have a
// floor/ceil that is, so the casts below are exact and never overflow.
inline constexpr double kTwo63 = 9223372036854775808.0;

// The smallest integer > d / >= d, and the largest < d / <= d; nullopt where no int64 qualifies.
inline std::optional<std::int64_t> int_above(double d) {
  if (std::isnan(d) || d >= kTwo63) return std::nullopt;
  if (d < -kTwo63) return kIdMin;
  return static_cast<std::int64_t>(std::floor(d)) + 1;  // floor(d) <= 2^63 - 1024: no overflow
}
inline std::optional<std::int64_t> int_at_or_above(double d) {
  if (std::isnan(d) || d >= kTwo63) return std::nullopt;
  if (d <= -kTwo63) return kIdMin;
  return static_cast<std::int64_t>(std::ceil(d));
}
inline std::optional<std::int64_t> int_below(double d) {
  if (std::isnan(d) || d <= -kTwo63) return std::nullopt;
  if (d >= kTwo63) return kIdMax;
  return static_cast<std::int64_t>(std::ceil(d)) - 1;  // ceil(d) >= -2^63 + 1024: no overflow
}
inline std::optional<std::int64_t> int_at_or_below(double d) {
  if (std::isnan(d) || d < -kTwo63) return std::nullopt;
  if (d >= kTwo63) return kIdMax;
  return static_cast<std::int64_t>(std::floor(d));
}

// The integer a REAL becomes under INTEGER affinity: only when the conversion is exact and strictly inside
// the int64 range, as SQLite's sqlite3VdbeIntegerAffinity decides (so -2^63 as a REAL stays a REAL).
inline std::optional<std::int64_t> exact_integer(double d) {
  if (!(d > -kTwo63 && d < kTwo63) || d != std::floor(d)) return std::nullopt;
  return static_cast<std::int64_t>(d);
}

}  // namespace imgstore
