#include "writer_lock.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <set>

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

// The descriptors of the locks this process holds. A child forked while one is held has a copy of it, which
// would keep the lock (the open file description's) alive after the parent released it, for as long as the
// child lives: so the child points its copies at /dev/null at once, before it runs anything else.
struct Held {
  std::mutex mutex;
  std::set<int> fds;
};

Held& held() {
  static Held h;
  return h;
}

void drop_inherited() noexcept {
  Held& h = held();
  const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (const int fd : h.fds) {
    if (null >= 0) ::dup3(null, fd, O_CLOEXEC);  // the number stays valid for its WriterLock, which closes it
  }
  if (null >= 0) ::close(null);
  h.fds.clear();
  h.mutex.unlock();  // taken before the fork (the handlers below), so no other thread had it mid-change
}

// Opens the spot's descriptor and records it, with no fork in between (the handlers take the same mutex).
Fd open_recorded(const LockSpot& spot, const std::string& what) {
  static std::once_flag once;
  std::call_once(once, [] {
    ::pthread_atfork([] { held().mutex.lock(); }, [] { held().mutex.unlock(); }, drop_inherited);
  });
  const std::lock_guard lock(held().mutex);
  Fd fd = open_or_throw(spot.path, open_flags(spot), what);
  held().fds.insert(fd.get());
  return fd;
}

void forget(int fd) noexcept {
  const std::lock_guard lock(held().mutex);
  held().fds.erase(fd);
}

}  // namespace

WriterLock::WriterLock(const LockSpot& spot, std::chrono::milliseconds timeout, const std::string& what)
    : fd_(open_recorded(spot, what)) {
  try {
    if (wait_for([&] { return try_take(fd_.get(), spot); }, timeout)) return;
  } catch (...) {
    release();
    throw;
  }
  release();  // another holder kept it all that time
}

WriterLock& WriterLock::operator=(WriterLock&& other) noexcept {
  if (this != &other) {
    release();
    fd_ = std::move(other.fd_);
    owner_ = other.owner_;
  }
  return *this;
}

WriterLock::operator bool() const { return fd_ && owner_.is_this_process(); }

void WriterLock::release() noexcept {
  if (!fd_) return;
  forget(fd_.get());
  fd_ = Fd();
}

}  // namespace imgstore
