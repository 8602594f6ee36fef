// The one writer lock of every store: one writer at a time per store, across connections and processes.
//
// An open-file-description lock (and flock) belongs to the open file description, and fork() shares that
// between parent and child: a lock taken through an inherited descriptor always succeeds, whoever holds it. So
// each acquisition opens a descriptor of its own (O_CLOEXEC), waits a bounded time for the lock on it
// (busy.hpp), and releases by closing it; no descriptor is kept across acquisitions. A WriterLock copied into a
// forked child is not held there (its owner is the process that took it), and the child's copy of the
// descriptor is pointed at /dev/null as it starts (pthread_atfork), so it never keeps the parent's lock alive.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>

#include "owner_process.hpp"
#include "posix_file.hpp"

namespace imgstore {

// Where a store's writer lock lives on disk.
struct LockSpot {
  enum class Kind {
    file_byte,  // an OFD write lock on one byte of a file, opened read-write (F_WRLCK needs a writable descriptor)
    directory,  // an exclusive flock on a directory (a directory cannot be opened for writing)
  };
  std::string path;
  Kind kind = Kind::file_byte;
  off_t byte = 0;
  bool create = false;  // a lock file made on first use
};

class WriterLock {
 public:
  WriterLock() = default;  // not held
  // Takes the lock within `timeout` (0: one try); not held when another descriptor kept it all that time.
  // Throws Error, prefixed with `what`, when the spot cannot be opened.
  WriterLock(const LockSpot& spot, std::chrono::milliseconds timeout, const std::string& what);
  WriterLock(WriterLock&&) noexcept = default;
  WriterLock& operator=(WriterLock&& other) noexcept;
  ~WriterLock() { release(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

  // Held, by this process: a copy inherited across fork() is not.
  explicit operator bool() const;
  // The locked descriptor (-1 when not held), e.g. for syncfs on a store's file system.
  int fd() const { return fd_.get(); }
  void release() noexcept;

 private:
  Fd fd_;
  OwnerProcess owner_;  // the process that took it
};

}  // namespace imgstore
