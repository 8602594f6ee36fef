// The process an object belongs to: the one that made it. fork() copies every object into the child, where some
// must not be used as the child's own: a lock the parent took (writer_lock.hpp), a library handle whose state
// is the parent's (an LMDB environment, which LMDB forbids using after a fork; HDF5's open file and its cache).
#pragma once

#include <sys/types.h>
#include <unistd.h>

namespace imgstore {

class OwnerProcess {
 public:
  bool is_this_process() const { return pid_ == ::getpid(); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = ::getpid();
};

}  // namespace imgstore
