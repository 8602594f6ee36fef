// Image shape 'HxWxC' (height x width x channels of uint8), parsed and validated in one place for every
// backend, source and function.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace imgstore {

struct Shape {
  std::uint32_t height = 0;
  std::uint32_t width = 0;
  std::uint32_t channels = 0;
  // A store's shape 'any': its images may differ in height, width and channels, each row carrying its own
  // (Image::shape, Cursor::row_shape). Dimensions are 0 then.
  bool any = false;

  static Shape any_size() noexcept { return Shape{0, 0, 0, true}; }
  std::size_t bytes() const noexcept {
    return std::size_t{height} * std::size_t{width} * std::size_t{channels};
  }
  std::string str() const;
  friend bool operator==(const Shape&, const Shape&) = default;
};

// Largest image we accept: 64 MiB of pixels (e.g. 4096x4096x4). Larger shapes are almost certainly typos, and
// SQLite's default blob limit is 1e9 bytes anyway.
inline constexpr std::size_t max_image_bytes = std::size_t{64} << 20;
inline constexpr std::uint32_t max_channels = 4;

// Parses 'HxWxC' (also 'HxW' is refused: the channel count is never guessed). Throws Error with a message that
// says what was expected; `what` names the thing being parsed (e.g. "table t: shape").
Shape parse_shape(std::string_view text, std::string_view what);
// A store's shape argument: 'HxWxC', or 'any' for a store of images of many sizes.
Shape parse_store_shape(std::string_view text, std::string_view what);

// The error for a shape argument that disagrees with the store's own shape.
class Error;
Error shape_mismatch(const std::string& table, const Shape& wanted, const std::string& path, const Shape& stored);

// Validates numbers from a file header or store metadata the same way parse_shape does.
Shape make_shape(std::uint64_t height, std::uint64_t width, std::uint64_t channels, std::string_view what);

}  // namespace imgstore
