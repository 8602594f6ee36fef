#include "png_dir_locks.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "busy.hpp"
#include "error.hpp"
#include "png_dir_format.hpp"
#include "posix_file.hpp"

namespace imgstore::png_dir {

namespace {

// The locks on .imgstore, bytes of open-file-description locks (per descriptor, so two connections of one
// process exclude each other too, and closing one descriptor drops only its own locks). Byte 1 is held shared
// by a statement while it starts (and by another tool's reader while it reads) and exclusive by an applying
// commit. Byte 0 is a gate: a commit takes it first, so new statements queue behind the commit instead of
// starving it; a statement passes the gate (shared, released at once) before it takes byte 1. Byte 2 is held
// exclusive by a live writer from before its commit record (COMMIT) appears until it has tidied up after
// applying it, except while an apply that failed leaves a half-applied state: a reader that finds COMMIT
// beside it reads on (the state is the old one or the new one) instead of waiting for the writer's
// transaction to end and finishing the record itself.
// From byte kReaders on, byte kReaders + g is held shared by each statement reading generation g, for its life.
constexpr off_t kGate = 0;
constexpr off_t kState = 1;
constexpr off_t kRecord = 2;
constexpr off_t kReaders = 1024;

// F_OFD_GETLK: does another descriptor hold a lock that would conflict with `type` on [start, start + len)?
bool held_by_others(int fd, short type, off_t start, off_t len) {
  struct flock lock{};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = len;
  if (::fcntl(fd, F_OFD_GETLK, &lock) != 0) throw_errno("fcntl(F_OFD_GETLK) failed", errno);
  return lock.l_type != F_UNLCK;
}

// parse_generation keeps generations far below where this would overflow (png_dir_format::kMostGenerations).
off_t reader_byte(std::uint64_t generation) {
  return kReaders + static_cast<off_t>(std::min(generation, png_dir_format::kMostGenerations));
}

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

void hold_generation(int fd, std::uint64_t generation, const std::string& where) {
  // imgstore never locks these bytes exclusively (a commit only asks, readers_before): another program does.
  if (!try_ofd_lock(fd, F_RDLCK, reader_byte(generation))) {
    throw Error(where + ": another program holds byte " + std::to_string(reader_byte(generation)) +
                    " of .imgstore exclusively (the lock a statement of generation " + std::to_string(generation) +
                    " holds shared); expected no exclusive lock there",
                ErrorKind::busy);
  }
  try_ofd_lock(fd, F_UNLCK, kState);
}

bool readers_before(int fd, std::uint64_t generation) {
  return generation > 0 && held_by_others(fd, F_WRLCK, kReaders, reader_byte(generation) - kReaders);
}

void unlock_applying(int fd) {
  try_ofd_lock(fd, F_UNLCK, kState);
  try_ofd_lock(fd, F_UNLCK, kGate);
}

void hold_record(int fd, const std::string& where) {
  // Only the writer (it holds the directory's flock) takes it: another holder is a bug, not a wait.
  if (!try_ofd_lock(fd, F_WRLCK, kRecord)) throw Error(where + ": the commit record lock is held by another descriptor");
}

void release_record(int fd) noexcept {
  try {
    try_ofd_lock(fd, F_UNLCK, kRecord);
  } catch (const std::exception&) {
    // Unlocking a byte of an open descriptor does not fail; were it to, closing the descriptor drops it.
  }
}

bool record_held(int fd) { return held_by_others(fd, F_RDLCK, kRecord, 1); }

}  // namespace imgstore::png_dir
