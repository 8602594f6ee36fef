// One lmdb store compacted from the command line (compact_lmdb_store, lmdb_store.hpp), for the tests that kill or
// stop a compaction at its points (IMGSTORE_LMDB_KILL_AT, IMGSTORE_LMDB_STOP_AT: core/test_hooks.hpp, on here):
//   lmdb_compact_tool PATH [TIMEOUT_MS]   prints "ROWS BYTES_BEFORE BYTES_AFTER"; an error: its message, exit 1
#include <cstdio>
#include <exception>
#include <string>

#include "lmdb_store.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PATH [TIMEOUT_MS]\n", argv[0]);
    return 2;
  }
  try {
    std::vector<std::string> args{"path='" + std::string(argv[1]) + "'"};
    if (argc > 2) args.push_back("timeout=" + std::string(argv[2]));
    const imgstore::Compacted done = imgstore::compact_lmdb_store("compact", args);
    std::printf("%llu %llu %llu\n", static_cast<unsigned long long>(done.rows),
                static_cast<unsigned long long>(done.bytes_before), static_cast<unsigned long long>(done.bytes_after));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
