// Sharded tables: one table over N complete stores of one backend in a folder, plus a manifest.
//
//   CREATE VIRTUAL TABLE train USING lmdb(path='train', shape='32x32x3', shards=8);
//   -- train/manifest.json, train/shard-000.lmdb ... train/shard-007.lmdb
//   CREATE VIRTUAL TABLE again USING lmdb(path='train');   -- the manifest says the rest
//
// Routing: id mod N (shard_manifest.hpp). Point reads and IN lists go to the owning shards; scans merge the
// shards in id order. Commits: the manifest is the single commit point (sharded_store.cpp). shards=1 or no
// `shards` on a path without a manifest is the backend's single store, unchanged.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "store.hpp"

namespace imgstore {

using BackendOpener =
    std::function<std::unique_ptr<Store>(const std::string& table, const std::vector<std::string>& args, OpenMode mode)>;

// Opens `backend`'s table: sharded when the arguments say shards=N (N >= 2) or `path` holds a manifest,
// else `open_single(table, args, mode)` as before.
std::unique_ptr<Store> open_maybe_sharded(const std::string& backend, const BackendOpener& open_single,
                                          const std::string& table, const std::vector<std::string>& args,
                                          OpenMode mode);

}  // namespace imgstore
