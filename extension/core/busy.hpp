// The one busy wait of every backend. A second writer (another connection of this process, or another
// process) waits a bounded time for the first to finish, then gets SQLITE_BUSY with a message naming the
// store; a reading statement waits the same way for a commit that is being applied.
#pragma once

#include <chrono>
#include <string>
#include <thread>

#include "args.hpp"
#include "error.hpp"
#include "posix_file.hpp"

namespace imgstore {

inline constexpr std::chrono::milliseconds kBusyTimeout{5000};

// Every store module's `timeout` argument: how long, in milliseconds, a writer waits for another writer (and a
// reader for a commit being applied) before SQLITE_BUSY. 0 fails at once.
inline std::chrono::milliseconds timeout_argument(const Args& args) {
  return std::chrono::milliseconds(args.integer("timeout", 0, 3600 * 1000, kBusyTimeout.count()));
}

// Polls `attempt()` (true: got it) every millisecond until it succeeds or `timeout` has passed.
template <typename Attempt>
bool wait_for(Attempt&& attempt, std::chrono::milliseconds timeout = kBusyTimeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!attempt()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Waits up to `timeout` for an open-file-description lock of `type` on one byte of `fd` (try_ofd_lock);
// false when another descriptor held it all that time.
inline bool wait_for_ofd_lock(int fd, short type, off_t byte, std::chrono::milliseconds timeout) {
  return wait_for([&] { return try_ofd_lock(fd, type, byte); }, timeout);
}

// "table t: 'path' is being written by another process; waited 5000 ms, try again after it commits"
[[noreturn]] inline void throw_writer_busy(const std::string& table, const std::string& path, const char* by_whom,
                                           std::chrono::milliseconds waited) {
  throw Error("table " + table + ": '" + path + "' is being written by " + by_whom + "; waited " +
                  std::to_string(waited.count()) + " ms, try again after it commits",
              ErrorKind::busy);
}

}  // namespace imgstore
