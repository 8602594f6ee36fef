// This test program's allocator (failing_allocator.cpp replaces the global operator new/delete): plain
// malloc/free, except that while a FailAllocations guard lives, every allocation of at least `from_bytes`
// throws std::bad_alloc on this thread. That is how a real out-of-memory reaches the code under test (and
// the extension when it is dlopen'ed into this program, which binds to the same operator new).
#pragma once

#include <cstddef>

namespace imgstore::test {

class FailAllocations {
 public:
  explicit FailAllocations(std::size_t from_bytes);  // 1: every allocation
  ~FailAllocations();
  FailAllocations(const FailAllocations&) = delete;
  FailAllocations& operator=(const FailAllocations&) = delete;
};

}  // namespace imgstore::test
