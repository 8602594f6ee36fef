// Test hooks, kept out of the shipped extension as SQLite keeps its own behind SQLITE_TEST. The core calls
// them at the points the crash and growth tests need; test_hooks.cpp defines them as doing nothing, and the
// same file built with IMGSTORE_TEST_HOOKS (into build/test-hooks/imgstore.so, CMakeLists.txt) reads the
// environment instead. Only the tests load that module.
#pragma once

#include <cstddef>

namespace imgstore::test_hooks {

// IMGSTORE_SHARDED_KILL_AT=k: SIGKILL at the k-th commit point a sharded table passes (sharded_store.cpp:
// 0 after the pending manifest, 1..N after each shard's commit, N+1 after the final manifest).
void sharded_kill_point();

// IMGSTORE_LMDB_KILL_AT=name: SIGKILL at the lmdb backend's point of that name (a store being made, a compaction:
// lmdb_env.cpp, lmdb_compact.cpp name them); IMGSTORE_LMDB_STOP_AT=name: SIGSTOP there, so that a test acts
// while the process stands at that point and lets it go on (SIGCONT).
void lmdb_kill_point(const char* name);

// IMGSTORE_LMDB_MAP_MIN (bytes, at least 1 MiB): the smallest LMDB map, lowered so a test can watch the map
// grow; 0 when unset (the store's own minimum holds).
std::size_t lmdb_map_min();

// IMGSTORE_SHARD_BUDGET (bytes): the uncommitted bytes a sharded lmdb table's bulk load may hold before a shard
// commits early (sharded_store.cpp), lowered so a test can kill a load between such commits; 0 when unset.
std::size_t shard_budget();

}  // namespace imgstore::test_hooks
