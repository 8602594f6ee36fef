#include <dlfcn.h>
#include <doctest/doctest.h>
#include <execinfo.h>
#include <unwind.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "error.hpp"
#include "failing_allocator.hpp"
#include "png_codec.hpp"

using FailLargeAllocations = imgstore::test::FailAllocations;

// No C++ exception may unwind through libpng's C frames (they have no cleanup, and libpng's state would be
// left half-changed). Debian's libpng has unwind tables, so such an exception would arrive anyway and the
// test could not tell by the result; so this program watches every exception: raised with libpng on the
// stack (libstdc++'s throw, rethrow and std::rethrow_exception all raise through _Unwind_RaiseException) and
// caught with libpng gone from it (every catch begins with __cxa_begin_catch) means it unwound through it.
namespace {
thread_local bool raised_with_libpng = false;
thread_local int unwound_through_libpng = 0;

bool libpng_on_stack() {
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  for (int i = 0; i < n; ++i) {
    Dl_info info{};
    if (::dladdr(frames[i], &info) != 0 && info.dli_fname != nullptr && std::strstr(info.dli_fname, "libpng") != nullptr) {
      return true;
    }
  }
  return false;
}

template <typename F>
F next_definition(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}
}  // namespace

extern "C" _Unwind_Reason_Code _Unwind_RaiseException(_Unwind_Exception* exception) {
  static const auto real = next_definition<_Unwind_Reason_Code (*)(_Unwind_Exception*)>("_Unwind_RaiseException");
  raised_with_libpng = libpng_on_stack();
  return real(exception);
}

extern "C" void* __cxa_begin_catch(void* exception) noexcept {
  static const auto real = next_definition<void* (*)(void*)>("__cxa_begin_catch");
  if (raised_with_libpng && !libpng_on_stack()) ++unwound_through_libpng;
  raised_with_libpng = false;
  return real(exception);
}

namespace {

// Noise does not compress: the PNG is about as large as the pixels.
std::vector<std::uint8_t> noise(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = 12345;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<std::uint8_t>(x >> 24);
  }
  return v;
}

}  // namespace

TEST_CASE("an allocation failure inside libpng's write callback comes back as bad_alloc, and the codec still works") {
  const imgstore::Shape shape = imgstore::parse_shape("128x128x3", "test");
  const auto pixels = noise(shape.bytes());
  std::vector<std::uint8_t> out;
  {
    const FailLargeAllocations limit(16 * 1024);  // the output vector cannot grow past 16 KiB
    CHECK_THROWS_AS(imgstore::png_encode(pixels, shape, 6, out, "png_encode()"), std::bad_alloc);
  }
  // It was caught in the callback, and raised again only after libpng had returned.
  CHECK(unwound_through_libpng == 0);
  // libpng was stopped cleanly: the next encode and a round trip work.
  imgstore::png_encode(pixels, shape, 6, out, "png_encode()");
  std::vector<std::uint8_t> back;
  CHECK(imgstore::png_decode(out, back, "png_decode()") == shape);
  CHECK(back == pixels);
}

TEST_CASE("libpng's own errors keep their messages") {
  std::vector<std::uint8_t> out;
  const std::vector<std::uint8_t> junk(100, 7);
  try {
    imgstore::png_decode(junk, out, "png_decode()");
    FAIL("junk decoded");
  } catch (const imgstore::Error& e) {
    CHECK(std::string(e.what()).find("png_decode(): not a readable PNG (") == 0);
    CHECK(e.kind() == imgstore::ErrorKind::corrupt);
  }
}
