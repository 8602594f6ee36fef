// Pillow's Image.convert between the modes a decoded image can have, byte for byte, so that image_folder()
// with a shape gives what `Image.open(p).convert(mode)` gives: gray L, gray+alpha LA, RGB, RGBA, and a JPEG's
// CMYK. Pixels are HWC uint8, interleaved.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace imgstore {

enum class PixelMode { gray, gray_alpha, rgb, rgba, cmyk };

// The mode of an image of 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels; CMYK is only ever said by a decoder.
PixelMode mode_of_channels(std::uint32_t channels);
std::uint32_t channels_of(PixelMode mode);

// Converts `pixels` images' worth of pixels from `from` into `to` (not CMYK) as Pillow converts them:
//   L -> LA, RGB, RGBA       the gray value replicated, alpha 255
//   LA -> L, RGB, RGBA       alpha dropped or kept
//   RGB, RGBA -> L, LA       ITU-R 601-2 luma, Pillow's fixed point: (19595 R + 38470 G + 7471 B + 0x8000) >> 16
//   RGBA -> RGB, RGB -> RGBA alpha dropped (not composited), alpha 255
//   CMYK -> RGB, RGBA        R = (255 - K) - (C (255 - K)) / 255 rounded as Pillow's MULDIV255, alpha 255
//   CMYK -> L, LA            through RGB, as Pillow's convert falls back to its base mode
// `out` is resized (capacity reused); `in` and `out` must not overlap.
void convert_pixels(std::span<const std::uint8_t> in, std::size_t pixels, PixelMode from, PixelMode to,
                    std::vector<std::uint8_t>& out);

// Pillow's premultiplication around a resize of LA and RGBA ("La", "RGBa"): colour channels scaled by alpha
// (MULDIV255) and back (255 * c / alpha, clipped; alpha 0 and 255 keep the value). In place; channels 2 or 4.
void premultiply_alpha(std::span<std::uint8_t> pixels, std::uint32_t channels);
void unpremultiply_alpha(std::span<std::uint8_t> pixels, std::uint32_t channels);

}  // namespace imgstore
