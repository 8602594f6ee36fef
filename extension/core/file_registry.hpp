// One open object per file per process, found by device and inode (so a symlink or another spelling of the
// path finds it too). LMDB forbids opening a file twice in one process; HDF5 shares one handle better than
// two. The registry holds weak references: the last table to close a store closes the file. After a fork()
// (a PyTorch DataLoader's workers are forks), an object the parent opened is, by the registry's Fork policy,
// either not found in the child, which opens its own (LMDB: an environment must not be used across a fork), or
// found and used (HDF5: the child's library still holds the parent's open file, and opening it again there
// shares that file's state and misread /ids chunks in our test; reading through the parent's handles works,
// writing through them does not: hdf5_file.hpp, H5File::opener_). LMDB's child never closes the parent's
// environment (lmdb_env.hpp, EnvClose).
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "error.hpp"

namespace imgstore {

template <typename T>
class FileRegistry {
 public:
  enum class Fork { reopen, reuse };
  explicit FileRegistry(Fork fork) : fork_(fork) {}

  // Held while looking up and opening, so two tables never open the same file at once.
  std::mutex& mutex() { return mutex_; }

  // The open object of the file `st` describes, if any (call with mutex() held).
  std::shared_ptr<T> find(const struct stat& st) {
    const auto it = open_.find({st.st_dev, st.st_ino});
    if (it == open_.end() || (fork_ == Fork::reopen && it->second.pid != ::getpid())) return nullptr;
    return it->second.object.lock();
  }

  // Records a newly opened object under the file's identity (call with mutex() held).
  void add(const std::string& path, const std::string& table, const std::shared_ptr<T>& object) {
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
      throw Error("table " + table + ": '" + path + "' vanished while opening it", ErrorKind::cantopen);
    }
    add(st, object);
  }
  // Records it under the identity `st` of the file it opened, which its path may no longer name (call with
  // mutex() held).
  void add(const struct stat& st, const std::shared_ptr<T>& object) {
    open_[{st.st_dev, st.st_ino}] = Entry{object, ::getpid()};
  }

  std::size_t open_count() {
    const std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& [key, entry] : open_) n += entry.object.expired() ? 0 : 1;
    return n;
  }

 private:
  struct Entry {
    std::weak_ptr<T> object;
    pid_t pid;  // the process that opened it
  };
  const Fork fork_;
  std::mutex mutex_;
  std::map<std::pair<dev_t, ino_t>, Entry> open_;
};

}  // namespace imgstore
