// Pillow's Image.resize((width, height), Image.BILINEAR), byte for byte, so that image_folder() with a shape
// gives what `img.convert(mode).resize((W, H), Image.BILINEAR)` gives. Pillow's resampling is a convolution:
// a triangle filter whose support grows with the downscale factor (so shrinking averages every source pixel,
// an antialiasing filter, not a 2x2 interpolation), separable, horizontal pass first then vertical, with
// coefficients in 22-bit fixed point and its rounding. Images with alpha (2 and 4 channels) are resized
// premultiplied, as Pillow resizes LA and RGBA through La and RGBa.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "shape.hpp"

namespace imgstore {

// Resizes HWC pixels of shape `from` to height x width (same channels) into `out` (resized, capacity reused).
// The same size is a copy, as in Pillow.
void resize_bilinear(std::span<const std::uint8_t> in, const Shape& from, std::uint32_t height, std::uint32_t width,
                     std::vector<std::uint8_t>& out);

}  // namespace imgstore
