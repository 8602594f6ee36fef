#include "failing_allocator.hpp"

#include <cstdlib>
#include <new>

namespace {
thread_local std::size_t fail_from = 0;  // 0: never fail
}  // namespace

namespace imgstore::test {
FailAllocations::FailAllocations(std::size_t from_bytes) { fail_from = from_bytes; }
FailAllocations::~FailAllocations() { fail_from = 0; }
}  // namespace imgstore::test

void* operator new(std::size_t size) {
  if (fail_from != 0 && size >= fail_from) throw std::bad_alloc();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
