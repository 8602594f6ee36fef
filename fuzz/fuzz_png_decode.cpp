// png_decode and png_peek_shape on any bytes: a shape and pixels, or an Error; never a crash, and never an
// allocation of what a header claims beyond 64 MiB.
#include <vector>

#include "error.hpp"
#include "png_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> out;
  try {
    const auto shape = imgstore::png_decode({data, size}, out, "fuzz");
    if (out.size() != shape.bytes()) __builtin_trap();
  } catch (const imgstore::Error&) {
  }
  try {
    (void)imgstore::png_peek_shape({data, size}, "fuzz");
  } catch (const imgstore::Error&) {
  }
  return 0;
}
