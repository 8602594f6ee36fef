#include "image_convert.hpp"

#include "error.hpp"

namespace imgstore {

namespace {

// Pillow's macros (libImaging/ImagingUtils.h, Convert.c), kept exact: these decide the last bit.
constexpr std::uint8_t muldiv255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return static_cast<std::uint8_t>(((t >> 8) + t) >> 8);
}
constexpr std::uint8_t luma(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  return static_cast<std::uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}
constexpr std::uint8_t clip8(int v) { return static_cast<std::uint8_t>(v <= 0 ? 0 : v >= 255 ? 255 : v); }

struct Rgba {
  std::uint8_t r, g, b, a;
};

// One pixel of any mode as Pillow holds it before converting: RGBA, gray replicated, CMYK already as RGB.
Rgba read_pixel(const std::uint8_t* p, PixelMode mode) {
  switch (mode) {
    case PixelMode::gray: return {p[0], p[0], p[0], 255};
    case PixelMode::gray_alpha: return {p[0], p[0], p[0], p[1]};
    case PixelMode::rgb: return {p[0], p[1], p[2], 255};
    case PixelMode::rgba: return {p[0], p[1], p[2], p[3]};
    case PixelMode::cmyk: {
      const int nk = 255 - p[3];
      return {clip8(nk - muldiv255(p[0], static_cast<unsigned>(nk))),
              clip8(nk - muldiv255(p[1], static_cast<unsigned>(nk))),
              clip8(nk - muldiv255(p[2], static_cast<unsigned>(nk))), 255};
    }
  }
  return {};
}

}  // namespace

PixelMode mode_of_channels(std::uint32_t channels) {
  switch (channels) {
    case 1: return PixelMode::gray;
    case 2: return PixelMode::gray_alpha;
    case 3: return PixelMode::rgb;
    case 4: return PixelMode::rgba;
    default: throw Error("an image of " + std::to_string(channels) + " channels; expected 1 to 4", ErrorKind::mismatch);
  }
}

std::uint32_t channels_of(PixelMode mode) {
  switch (mode) {
    case PixelMode::gray: return 1;
    case PixelMode::gray_alpha: return 2;
    case PixelMode::rgb: return 3;
    default: return 4;
  }
}

void convert_pixels(std::span<const std::uint8_t> in, std::size_t pixels, PixelMode from, PixelMode to,
                    std::vector<std::uint8_t>& out) {
  const std::size_t in_step = channels_of(from);
  const std::size_t out_step = channels_of(to);
  out.resize(pixels * out_step);
  if (from == to) {
    std::copy(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(pixels * in_step), out.begin());
    return;
  }
  const std::uint8_t* p = in.data();
  std::uint8_t* q = out.data();
  for (std::size_t i = 0; i < pixels; ++i, p += in_step, q += out_step) {
    const Rgba v = read_pixel(p, from);
    // From gray, Pillow replicates the value: its luma of (v, v, v) is v again, so one formula serves.
    const bool gray_source = from == PixelMode::gray || from == PixelMode::gray_alpha;
    switch (to) {
      case PixelMode::gray: q[0] = gray_source ? v.r : luma(v.r, v.g, v.b); break;
      case PixelMode::gray_alpha:
        q[0] = gray_source ? v.r : luma(v.r, v.g, v.b);
        q[1] = v.a;
        break;
      case PixelMode::rgb:
        q[0] = v.r;
        q[1] = v.g;
        q[2] = v.b;
        break;
      case PixelMode::rgba:
      case PixelMode::cmyk:  // never a target; the caller asks for channel counts
        q[0] = v.r;
        q[1] = v.g;
        q[2] = v.b;
        q[3] = v.a;
        break;
    }
  }
}

void premultiply_alpha(std::span<std::uint8_t> pixels, std::uint32_t channels) {
  const std::size_t colours = channels - 1;
  for (std::size_t i = 0; i + channels <= pixels.size(); i += channels) {
    const unsigned alpha = pixels[i + colours];
    for (std::size_t c = 0; c < colours; ++c) pixels[i + c] = muldiv255(pixels[i + c], alpha);
  }
}

void unpremultiply_alpha(std::span<std::uint8_t> pixels, std::uint32_t channels) {
  const std::size_t colours = channels - 1;
  for (std::size_t i = 0; i + channels <= pixels.size(); i += channels) {
    const int alpha = pixels[i + colours];
    if (alpha == 0 || alpha == 255) continue;
    for (std::size_t c = 0; c < colours; ++c) pixels[i + c] = clip8((255 * pixels[i + c]) / alpha);
  }
}

}  // namespace imgstore
