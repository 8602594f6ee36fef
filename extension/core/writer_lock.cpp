#include "writer_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include "busy.hpp"

namespace imgstore {

namespace {

// One try: true when taken, false while another descriptor holds it, an Error for anything else.
bool try_take(int fd, const LockSpot& spot) {
  if (spot.kind == LockSpot::Kind::file_byte) return try_ofd_lock(fd, F_WRLCK, spot.byte);
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
  if (errno == EWOULDBLOCK || errno == EINTR) return false;
  throw_errno("flock of '" + spot.path + "' failed", errno);
}

int open_flags(const LockSpot& spot) {
  if (spot.kind == LockSpot::Kind::directory) return O_RDONLY | O_DIRECTORY | O_CLOEXEC;
  return O_RDWR | O_CLOEXEC | (spot.create ? O_CREAT : 0);
}

}  // namespace

WriterLock::WriterLock(const LockSpot& spot, std::chrono::milliseconds timeout, const std::string& what) {
  Fd fd = open_or_throw(spot.path, open_flags(spot), what);
  if (!wait_for([&] { return try_take(fd.get(), spot); }, timeout)) return;
  fd_ = std::move(fd);
}

WriterLock::operator bool() const { return fd_ && owner_.is_this_process(); }

}  // namespace imgstore
