#include "shape.hpp"

#include <charconv>

#include "error.hpp"

namespace imgstore {

std::string Shape::str() const {
  if (any) return "any";
  return std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels);
}

Error shape_mismatch(const std::string& table, const Shape& wanted, const std::string& path, const Shape& stored) {
  return Error("table " + table + ": shape '" + wanted.str() + "' disagrees with the store '" + path + "', which holds " +
                   (stored.any ? std::string("images of any size (shape 'any')") : stored.str() + " images"),
               ErrorKind::mismatch);
}

Shape make_shape(std::uint64_t height, std::uint64_t width, std::uint64_t channels, std::string_view what) {
  const std::string dims =
      std::to_string(height) + "x" + std::to_string(width) + "x" + std::to_string(channels);
  if (height == 0 || width == 0 || channels == 0) {
    throw Error(std::string(what) + ": shape '" + dims + "' has a zero dimension; expected positive HxWxC",
                ErrorKind::mismatch);
  }
  if (channels > max_channels) {
    throw Error(std::string(what) + ": shape '" + dims + "' has " + std::to_string(channels) +
                    " channels; expected 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA)",
                ErrorKind::mismatch);
  }
  // Check before multiplying in 64 bits can overflow: each factor is bounded first.
  if (height > max_image_bytes || width > max_image_bytes ||
      height * width > max_image_bytes / channels) {
    throw Error(std::string(what) + ": shape '" + dims + "' is larger than " +
                    std::to_string(max_image_bytes >> 20) + " MiB per image",
                ErrorKind::mismatch);
  }
  return Shape{static_cast<std::uint32_t>(height), static_cast<std::uint32_t>(width),
               static_cast<std::uint32_t>(channels)};
}

namespace {

// parse_shape, its "not a shape" message ending with `also` (what else the caller accepts). The dimensions'
// own errors (a zero dimension, too large: make_shape) are the same for every caller.
Shape parse_dims(std::string_view text, std::string_view what, std::string_view also) {
  const auto fail = [&]() -> Error {
    return Error(std::string(what) + ": '" + std::string(text) +
                     "' is not a shape; expected HxWxC with positive integers, e.g. '32x32x3'" + std::string(also),
                 ErrorKind::mismatch);
  };
  std::uint64_t dims[3] = {0, 0, 0};
  const char* p = text.data();
  const char* const end = text.data() + text.size();
  for (int i = 0; i < 3; ++i) {
    if (i > 0) {
      if (p == end || (*p != 'x' && *p != 'X')) throw fail();
      ++p;
    }
    if (p == end || *p < '0' || *p > '9') throw fail();
    const auto [next, ec] = std::from_chars(p, end, dims[i]);
    if (ec != std::errc{}) throw fail();
    p = next;
  }
  if (p != end) throw fail();
  return make_shape(dims[0], dims[1], dims[2], what);
}

}  // namespace

Shape parse_shape(std::string_view text, std::string_view what) { return parse_dims(text, what, ""); }

Shape parse_store_shape(std::string_view text, std::string_view what) {
  if (text == "any" || text == "ANY" || text == "Any") return Shape::any_size();
  return parse_dims(text, what, ", or 'any' for images of many sizes");
}

}  // namespace imgstore
