// PNG encoding and decoding in memory with libpng, shared by the png_dir backend and the png_* functions.
// Errors come back as imgstore::Error naming `what` (a file name, a table and id, or a function).
#pragma once

#include <png.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "shape.hpp"

namespace imgstore {

// The PNG colour type of an image with this many 8-bit channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
inline int png_colour_type(std::uint32_t channels) {
  switch (channels) {
    case 1: return PNG_COLOR_TYPE_GRAY;
    case 2: return PNG_COLOR_TYPE_GRAY_ALPHA;
    case 3: return PNG_COLOR_TYPE_RGB;
    default: return PNG_COLOR_TYPE_RGBA;
  }
}

// The check png_encode starts with, on its own: a threaded INSERT runs it on the calling thread, so a wrong
// length fails the row's own put() with the usual message, before the encode goes to a worker.
void png_check_pixels(std::size_t size, const Shape& shape, const std::string& what);

// Encodes HWC uint8 pixels as an 8-bit PNG whose colour type follows the channel count (1 gray, 2 gray+alpha,
// 3 RGB, 4 RGBA) at zlib level 0..9. Appends to `out` (cleared first), reusing its capacity.
void png_encode(std::span<const std::uint8_t> pixels, const Shape& shape, int level, std::vector<std::uint8_t>& out,
                const std::string& what);

// Reads only the header: the shape the pixels will have after decoding (palette -> RGB/RGBA, 16-bit -> 8-bit by
// the high byte, gray of 1, 2 or 4 bits -> 8 bits scaled to 0..255, as Pillow's np.asarray(Image.open(png))
// gives them). Refuses images over max_image_bytes before any allocation.
Shape png_peek_shape(std::span<const std::uint8_t> png, const std::string& what);

// Decodes into `out` (resized, capacity reused); returns the shape.
Shape png_decode(std::span<const std::uint8_t> png, std::vector<std::uint8_t>& out, const std::string& what);

}  // namespace imgstore
