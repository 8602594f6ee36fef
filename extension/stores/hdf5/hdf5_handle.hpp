// HDF5 handles and errors for the hdf5 backend: the process-wide mutex every HDF5 call runs under, HDF5's
// error stack turned into our Error, and Hid, an HDF5 identifier closed by its H5?close.
//
// Debian builds libhdf5 thread-safe (H5_HAVE_THREADSAFE), but that is one global lock inside it, which we do not
// rely on. Every call is made under our own mutex, from whichever thread (a sharded table's lanes too). HDF5's
// own error printing is switched off (Lock, on every thread that calls HDF5) and its error stack becomes our
// message.
#pragma once

#include <hdf5.h>

#include <mutex>
#include <string>

#include "error.hpp"

namespace imgstore::hdf5 {

std::recursive_mutex& hdf5_mutex();

// HDF5's error printing off for the calling thread: the thread-safe build keeps that setting per thread, so any
// thread but the one that opened the file (a sharded table's lane, another Python thread on the same table)
// printed HDF5's error stacks to stderr. Once per thread; a forked child's thread keeps its parent's.
void silence_hdf5();

// hdf5_mutex() held, HDF5 silent on this thread: how every HDF5 call is made. unlock() lets go early (a read
// that goes on with pure computation).
class Lock {
 public:
  explicit Lock(std::recursive_mutex& m) : lock_(m) { silence_hdf5(); }
  void unlock() { lock_.unlock(); }

 private:
  std::unique_lock<std::recursive_mutex> lock_;
};

// The reverse of Lock, for a stretch of pure computation (zlib) in the middle of a locked call: released on
// construction, taken again on destruction. The calling thread must hold the mutex exactly once for others to
// get it meanwhile (held more often, it stays held: still correct, only not concurrent).
class Unlocked {
 public:
  explicit Unlocked(std::recursive_mutex& m) : m_(m) { m_.unlock(); }
  ~Unlocked() { m_.lock(); }
  Unlocked(const Unlocked&) = delete;
  Unlocked& operator=(const Unlocked&) = delete;

 private:
  std::recursive_mutex& m_;
};

// HDF5's error stack: the descriptions as one line, innermost last, whether a file lock was refused
// (H5E_CANTLOCKFILE: another process has the file open), and whether metadata failed its checksum. Reading it
// clears it.
struct ErrorStack {
  std::string text;
  bool locked = false;
  bool checksum() const { return text.find("incorrect metadata checksum") != std::string::npos; }
};
ErrorStack error_stack();

// Throws Error(what + HDF5's error stack), of kind full, busy or corrupt where the stack says so.
[[noreturn]] void fail(const std::string& what);

// An HDF5 identifier closed by the matching H5?close.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  // Forgets the identifier without closing it (a writer's handles inherited across fork: H5File::close).
  void leak() noexcept { id_ = H5I_INVALID_HID; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& what);
void checked(herr_t rc, const std::string& what);

// After a file closes: HDF5 keeps the blocks it freed (chunk buffers, metadata) on its own free lists for
// reuse, up to about 40 MB, and glibc keeps freed heap; both go back to the system here, so that a connection
// that opens and drops many stores does not keep the memory of the largest ones it had.
void release_memory() noexcept;

}  // namespace imgstore::hdf5
