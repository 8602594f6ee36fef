#include "png_dir_locks.hpp"

#include <fcntl.h>

#include "busy.hpp"
#include "posix_file.hpp"

namespace imgstore::png_dir {

namespace {

// The reader/writer lock on .imgstore, from two bytes of open-file-description locks (per descriptor, so two
// connections of one process exclude each other too, and closing one descriptor drops only its own locks).
// Byte 1 is held shared by every reading statement and exclusive by an applying commit. Byte 0 is a gate: a
// commit takes it first, so new statements queue behind the commit instead of starving it; a statement passes
// the gate (shared, released at once) before it takes byte 1.
constexpr off_t kGate = 0;
constexpr off_t kState = 1;

}  // namespace

// A reading statement's shared lock; false when a commit held it up for longer than `timeout`.
bool lock_for_reading(int fd, std::chrono::milliseconds timeout) {
  if (!wait_for_ofd_lock(fd, F_RDLCK, kGate, timeout)) return false;
  const bool ok = wait_for_ofd_lock(fd, F_RDLCK, kState, timeout);
  try_ofd_lock(fd, F_UNLCK, kGate);
  return ok;
}

// A commit's exclusive lock: closes the gate, then waits for the reading statements to finish.
bool lock_for_applying(int fd, std::chrono::milliseconds timeout) {
  return wait_for_ofd_lock(fd, F_WRLCK, kGate, timeout) && wait_for_ofd_lock(fd, F_WRLCK, kState, timeout);
}

}  // namespace imgstore::png_dir
