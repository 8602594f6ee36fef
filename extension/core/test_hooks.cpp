// Built twice: without IMGSTORE_TEST_HOOKS into imgstore_core (every hook does nothing), with it into the
// objects that build/test-hooks/imgstore.so links ahead of the core, so that their definitions are the ones it uses.
#include "test_hooks.hpp"

#ifdef IMGSTORE_TEST_HOOKS
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#endif

namespace imgstore::test_hooks {

#ifdef IMGSTORE_TEST_HOOKS

void sharded_kill_point() {
  static std::atomic<int> passed{0};
  static const char* const at = std::getenv("IMGSTORE_SHARDED_KILL_AT");
  if (at != nullptr && passed.fetch_add(1) == std::atoi(at)) std::raise(SIGKILL);
}

void lmdb_kill_point(const char* name) {
  static const char* const kill_at = std::getenv("IMGSTORE_LMDB_KILL_AT");
  static const char* const stop_at = std::getenv("IMGSTORE_LMDB_STOP_AT");
  if (kill_at != nullptr && std::strcmp(kill_at, name) == 0) std::raise(SIGKILL);
  if (stop_at != nullptr && std::strcmp(stop_at, name) == 0) std::raise(SIGSTOP);
}

std::size_t lmdb_map_min() {
  const char* const text = std::getenv("IMGSTORE_LMDB_MAP_MIN");
  const long long n = text != nullptr ? std::atoll(text) : 0;
  return n >= (1LL << 20) ? static_cast<std::size_t>(n) : 0;
}

std::size_t shard_budget() {
  const char* const text = std::getenv("IMGSTORE_SHARD_BUDGET");
  const long long n = text != nullptr ? std::atoll(text) : 0;
  return n > 0 ? static_cast<std::size_t>(n) : 0;
}

#else

void sharded_kill_point() {}
std::size_t shard_budget() { return 0; }
void lmdb_kill_point(const char*) {}
std::size_t lmdb_map_min() { return 0; }

#endif

}  // namespace imgstore::test_hooks
