// One image file as image_folder() reads it: its bytes, PNG or JPEG by its first bytes (not its name), decoded
// as Pillow's Image.open decodes it, and with a target shape converted and resized as
// `img.convert(mode).resize((W, H), Image.BILINEAR)` does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shape.hpp"

namespace imgstore {

struct ImageFile {
  Shape shape;
  std::vector<std::uint8_t> pixels;  // HWC; empty when only the shape was asked for
  bool has_pixels = false;
};

// Reads and decodes `path`. Without a target the image keeps its size and its channels (PNG: gray 1, gray+alpha
// 2, RGB 3, RGBA 4, a palette 3 or 4, 16 bits by the high byte; JPEG: gray 1, colour 3, CMYK 4 as Pillow's mode
// CMYK holds it); with one it has the target's shape. With want_pixels false only the header is decoded (the
// shape; with a target, nothing is read at all). Errors name `fn`() and the file: a missing or unreadable file,
// not a regular file, a format other than PNG and JPEG, a corrupt or truncated image.
ImageFile read_image_file(const std::string& path, const std::optional<Shape>& target, bool want_pixels,
                          const std::string& fn);

// The file size image_folder() refuses to read: far beyond any image of 64 MiB of pixels.
inline constexpr std::uint64_t max_image_file_bytes = std::uint64_t{256} << 20;

}  // namespace imgstore
