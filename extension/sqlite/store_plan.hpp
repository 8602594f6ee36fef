// A store table's plans, as xBestIndex (vtab.cpp) hands them to SQLite: the idxNum bits xFilter decodes, the
// id range a bound gives (xFilter's, and xBestIndex's estimate where the bound is a constant), the idxStr
// EXPLAIN QUERY PLAN prints, and what each plan costs and yields. Only the SQLite layer includes it.
//
//   sqlite> EXPLAIN QUERY PLAN SELECT sum(length(pixels)) FROM ids JOIN s USING(id);
//   |--SCAN ids
//   `--SCAN s VIRTUAL TABLE INDEX 1:id=?
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "id_bounds.hpp"
#include "sqlite3ext.h"
#include "store.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore::store_plan {

// idxNum bits: which constraints xFilter receives, in argv order: eq, then lo, then hi.
enum Bits : int {
  kEq = 1,         // id = ?  (one value)
  kIn = 2,         // id IN (...) all at once
  kLo = 4,         // id > ? or id >= ?
  kLoStrict = 8,   // the lower bound is '>'
  kHi = 16,        // id < ? or id <= ?
  kHiStrict = 32,  // the upper bound is '<'
};

// Narrows `range` by the constraint `id op value`. SQLite re-checks ranges (they are not omitted), so the
// range may be wider than the truth but never narrower: every bound is computed exactly (id_bounds.hpp).
inline void apply_bound(IdRange& range, int op, sqlite3_value* value) {
  const int type = sqlite3_value_numeric_type(value);
  const bool lower = op == SQLITE_INDEX_CONSTRAINT_GT || op == SQLITE_INDEX_CONSTRAINT_GE;
  if (type == SQLITE_NULL) {  // comparisons with NULL are never true
    range = IdRange{1, 0};
    return;
  }
  if (type == SQLITE_TEXT || type == SQLITE_BLOB) {  // every integer sorts below text and blobs
    if (lower) range = IdRange{1, 0};
    return;
  }
  std::optional<std::int64_t> bound;
  if (type == SQLITE_INTEGER) {
    const std::int64_t i = sqlite3_value_int64(value);
    switch (op) {
      case SQLITE_INDEX_CONSTRAINT_GT: bound = i == kIdMax ? std::nullopt : std::optional(i + 1); break;
      case SQLITE_INDEX_CONSTRAINT_LT: bound = i == kIdMin ? std::nullopt : std::optional(i - 1); break;
      default: bound = i; break;
    }
  } else {
    const double d = sqlite3_value_double(value);
    switch (op) {
      case SQLITE_INDEX_CONSTRAINT_GT: bound = int_above(d); break;
      case SQLITE_INDEX_CONSTRAINT_GE: bound = int_at_or_above(d); break;
      case SQLITE_INDEX_CONSTRAINT_LT: bound = int_below(d); break;
      default: bound = int_at_or_below(d); break;
    }
  }
  if (!bound) {  // no integer satisfies it
    range = IdRange{1, 0};
  } else if (lower) {
    range.lo = std::max(range.lo, *bound);
  } else {
    range.hi = std::min(range.hi, *bound);
  }
}

// What EXPLAIN QUERY PLAN shows after "INDEX n:", in the words of SQLite's own plans ("rowid>? AND rowid<?"):
// the constraints the store applies, and ORDER BY id when the store's order spares SQLite a sort.
inline std::string describe(int bits, bool order_by_id) {
  std::string text;
  if ((bits & kEq) != 0) text = "id=?";
  if ((bits & kIn) != 0) text = "id IN (...)";
  if ((bits & kLo) != 0) text = (bits & kLoStrict) != 0 ? "id>?" : "id>=?";
  const auto append = [&text](const char* part) {
    if (!text.empty()) text += ' ';
    text += part;
  };
  if ((bits & kHi) != 0) {
    if (!text.empty()) append("AND");
    append((bits & kHiStrict) != 0 ? "id<?" : "id<=?");
  }
  if (order_by_id) append("ORDER BY id");
  return text;
}

// The cost model, in the units of SQLite's planner, since our estimates are weighed against its own: it
// charges a full scan of a native table 3 per row and a rowid seek about log2 of its rows (where.c), and it
// takes a native table it has no statistics for (no ANALYZE) to hold 1,048,576 rows.
//
// Against that guess a store is usually the smaller table, so costs true to each loop's measured time would
// have SQLite scan the store and seek the native table in every join, reading (png_dir: decoding) every image
// to return the few the native table names: for 1,000 ids in 100,000 images, 6x (hdf5) to 42x (png_dir)
// slower than the other order (issue 25; bench/notes/planner.md). But the native table of such a join is
// nearly always a selection of the store (a split, a batch, the ids of a query) and 1,048,576 a placeholder,
// while the store's size is known. So the model leans, as SQLite's own 3x full-scan penalty does, towards the
// plan bounded by what the query asks for rather than by the whole store:
//  - id = ?: 1, one row. A seek by key (LMDB's B-tree, hdf5's in-memory index, png_dir's file name) costs
//    next to nothing; the image it reads is a row the query returns, which any plan reads.
//  - a row passed by a scan: 3, as a native row, plus its image at one unit per 4 bytes: what png_dir's decode
//    costs at SQLite's scale (~10 us for a 3 KiB PNG where a native row's 3 units take ~40 ns). lmdb and hdf5
//    read faster; one model serves every backend, and the costly mistake is a scan that need not happen.
// A join with such a native table puts it outside once the store holds about 6,200 images of 32x32x3 (21,000
// of 28x28x1); a smaller store is scanned first, which costs little whichever plan runs.
struct Estimate {
  double cost = 0;
  std::int64_t rows = 0;
};

inline constexpr double kSeekCost = 1.0;
inline constexpr double kNativeRowCost = 3.0;
inline constexpr double kBytesPerUnit = 4.0;
// What SQLite assumes of an IN list or subquery it cannot see (where.c: "nIn = 46; /* 25 */").
inline constexpr double kInValues = 25.0;
// SQLite's own guesses without statistics (whereRangeScanEst): a bound keeps 1/4 of the rows, two keep 1/64.
inline constexpr double kOneBoundFraction = 1.0 / 4;
inline constexpr double kTwoBoundsFraction = 1.0 / 64;
// The image size assumed of a store of shape 'any' (its sizes are not known without reading them): a small
// photo, 64x64x3.
inline constexpr std::uint64_t kAnyImageBytes = 64 * 64 * 3;

inline double row_cost(std::uint64_t image_bytes) {
  return kNativeRowCost + static_cast<double>(image_bytes) / kBytesPerUnit;
}

inline std::int64_t at_least_one(double rows) { return std::max<std::int64_t>(1, static_cast<std::int64_t>(rows)); }

// id = ?: at most one row.
inline Estimate point() { return {kSeekCost, 1}; }

// id IN (...): one seek per value, the values unknown until xFilter.
inline Estimate in_list(std::uint64_t count) {
  const double values = std::min(kInValues, static_cast<double>(std::max<std::uint64_t>(count, 1)));
  return {values * kSeekCost, at_least_one(values)};
}

// A scan of `fraction` of the store (1: every row) from a seek to its first row.
inline Estimate scan(std::uint64_t count, std::uint64_t image_bytes, double fraction) {
  const double rows = static_cast<double>(count) * fraction;
  return {kSeekCost + rows * row_cost(image_bytes), at_least_one(rows)};
}

// The fraction of the store's ids in `range`, the ids taken as spread over [0, max_id] (ids are assigned
// densely from 0 or 1 by INSERT, and by the sources); 1 for an empty store.
inline double range_fraction(IdRange range, std::optional<std::int64_t> max_id) {
  if (!max_id || *max_id < 0) return 1.0;
  if (range.empty()) return 0.0;
  const double lo = static_cast<double>(std::max<std::int64_t>(range.lo, 0));
  const double hi = static_cast<double>(std::min(range.hi, *max_id));
  const double span = static_cast<double>(*max_id) + 1;
  return hi < lo ? 0.0 : std::min(1.0, (hi - lo + 1) / span);
}

}  // namespace imgstore::store_plan
