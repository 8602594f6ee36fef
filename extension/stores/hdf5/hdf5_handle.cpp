// HDF5's errors as ours, and the mutex around every HDF5 call (hdf5_handle.hpp).
#include "hdf5_handle.hpp"

#include <malloc.h>

#include <utility>

namespace imgstore::hdf5 {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

void silence_hdf5() {
  thread_local bool silent = false;
  if (!std::exchange(silent, true)) H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

void release_memory() noexcept {
  H5garbage_collect();
  ::malloc_trim(0);
}

ErrorStack error_stack() {
  ErrorStack stack;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) noexcept -> herr_t {
        // A C callback: nothing may be thrown through HDF5's frames. Out of memory ends the walk early.
        try {
          auto& s = *static_cast<ErrorStack*>(out);
          if (e->min_num == H5E_CANTLOCKFILE) s.locked = true;
          if (e->desc != nullptr && *e->desc != '\0') {
            if (!s.text.empty()) s.text += "; ";
            s.text += e->desc;
          }
          return 0;
        } catch (...) {
          return -1;
        }
      },
      &stack);
  H5Eclear2(H5E_DEFAULT);
  if (stack.text.empty()) stack.text = "unknown HDF5 error";
  return stack;
}

[[noreturn]] void fail(const std::string& what) {
  const ErrorStack stack = error_stack();
  ErrorKind kind = ErrorKind::generic;
  // HDF5 has no error code for a full disk, only errno in the text of its write error.
  if (stack.text.find("errno = 28") != std::string::npos || stack.text.find("No space left") != std::string::npos) {
    kind = ErrorKind::full;
  }
  if (stack.locked) kind = ErrorKind::busy;
  // Past the open, a reader that raced a commit retries on its own (H5File::load_committed_v2); what reaches
  // here is damage.
  if (stack.checksum()) throw Error(what + " (" + stack.text + "): the file is damaged", ErrorKind::corrupt);
  throw Error(what + " (" + stack.text + ")", kind);
}

Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& what) {
  if (id < 0) fail(what);
  return Hid(id, close);
}

void checked(herr_t rc, const std::string& what) {
  if (rc < 0) fail(what);
}

}  // namespace imgstore::hdf5
