// The manifest of a sharded table: `path/manifest.json`, beside N complete stores of one backend.
//
//   {"format": "imgstore-sharded 1", "backend": "lmdb", "shape": "32x32x3", "routing": "id mod 8",
//    "generation": 3, "shards": [{"file": "shard-000.lmdb", "rows": 125000}, ...], "pending": [[0, 999999]],
//    "undo": 12}
//
// Routing: id mod N (ids are >= 0), so shard k holds the ids k, k + N, k + 2N, ... `rows` are the committed
// row counts; `generation` counts commits. `pending` is present only during a multi-shard commit: the id
// ranges the commit inserts, written before any shard commits (readers hide those ids, and recovery deletes
// them from the shards if the writer died before the manifest that ends the commit). `undo`, likewise only
// during a commit: how many rows `undo.journal` holds, the rows the commit replaces, relabels or deletes as they
// were before it (shard_journal.hpp); readers wait for such a commit to end, recovery writes them back. Pure: parsed and written
// here without touching files, so it is unit-tested and fuzzable.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "shape.hpp"
#include "store.hpp"

namespace imgstore::sharded {

inline constexpr std::string_view kFormatTag = "imgstore-sharded 1";
inline constexpr std::string_view kManifestName = "manifest.json";
inline constexpr std::int64_t kMaxShards = 4096;

struct ShardEntry {
  std::string file;  // relative to the table's folder
  std::uint64_t rows = 0;
  friend bool operator==(const ShardEntry&, const ShardEntry&) = default;
};

struct Manifest {
  std::string backend;  // lmdb, hdf5 or png_dir
  Shape shape;
  std::uint64_t generation = 0;
  std::vector<ShardEntry> shards;
  std::vector<IdRange> pending;  // ids inserted by a commit in progress (or interrupted)
  std::uint64_t undo = 0;        // rows of undo.journal that a commit in progress (or interrupted) changes
  bool unfinished() const { return !pending.empty() || undo > 0; }
  friend bool operator==(const Manifest& a, const Manifest& b) {
    if (a.pending.size() != b.pending.size()) return false;
    for (std::size_t i = 0; i < a.pending.size(); ++i) {
      if (a.pending[i].lo != b.pending[i].lo || a.pending[i].hi != b.pending[i].hi) return false;
    }
    return a.backend == b.backend && a.shape == b.shape && a.generation == b.generation && a.shards == b.shards &&
           a.undo == b.undo;
  }
};

// The shard that owns `id`: id mod shards (for a negative id, its remainder made non-negative).
inline std::size_t shard_of(std::int64_t id, std::size_t shards) {
  const auto n = static_cast<std::int64_t>(shards);
  return static_cast<std::size_t>(((id % n) + n) % n);
}

// "shard-003.lmdb", "shard-003.h5", "shard-003" (a png_dir folder).
std::string shard_file_name(std::string_view backend, std::size_t index);

// A fresh manifest of `shards` empty shards.
Manifest new_manifest(std::string_view backend, const Shape& shape, std::size_t shards);

std::string to_json(const Manifest& manifest);
// Parses and validates (format tag, backend, shape, 1..kMaxShards shards, routing naming the same count, file
// names without '/' or '..'). Errors name `what` (the manifest's path) and the offending field.
Manifest parse_manifest(std::string_view json, const std::string& what);

// Whether `id` is in one of `sorted` (disjoint ranges in ascending order, as the manifest keeps `pending`).
bool in_ranges(const std::vector<IdRange>& sorted, std::int64_t id);

// A set of ids kept as disjoint inclusive ranges: a bulk load of consecutive ids is one entry.
class IdRangeSet {
 public:
  void add(std::int64_t id);
  bool contains(std::int64_t id) const;
  std::vector<IdRange> ranges() const;
  void clear() { by_lo_.clear(); }

 private:
  std::map<std::int64_t, std::int64_t> by_lo_;  // lo -> hi
};

}  // namespace imgstore::sharded
