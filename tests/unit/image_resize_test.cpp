// Pillow's conversions and BILINEAR resize, pinned by values Pillow 9.4 computes for the same pixels
// (Image.fromarray(a, mode).convert(...) / .resize((W, H), Image.BILINEAR)); tests/python/test_image_folder.py
// compares whole images of every mode and many sizes.
#include <doctest/doctest.h>

#include <vector>

#include "image_convert.hpp"
#include "image_resize.hpp"

using imgstore::PixelMode;
using imgstore::Shape;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes convert(const Bytes& in, PixelMode from, PixelMode to) {
  Bytes out;
  imgstore::convert_pixels(in, in.size() / imgstore::channels_of(from), from, to, out);
  return out;
}

Bytes resize(const Bytes& in, Shape from, std::uint32_t height, std::uint32_t width) {
  Bytes out;
  imgstore::resize_bilinear(in, from, height, width, out);
  return out;
}

}  // namespace

TEST_CASE("RGB to gray is Pillow's ITU-R 601-2 luma with its fixed-point rounding") {
  CHECK(convert({255, 0, 0, 0, 255, 0, 0, 0, 255, 12, 34, 56}, PixelMode::rgb, PixelMode::gray) == Bytes{76, 150, 29, 30});
  // RGBA ignores alpha for L and keeps it for LA; alpha is dropped, not composited, for RGB.
  CHECK(convert({12, 34, 56, 7}, PixelMode::rgba, PixelMode::gray_alpha) == Bytes{30, 7});
  CHECK(convert({12, 34, 56, 7}, PixelMode::rgba, PixelMode::rgb) == Bytes{12, 34, 56});
}

TEST_CASE("gray replicates; added alpha is 255") {
  CHECK(convert({9, 200}, PixelMode::gray, PixelMode::rgb) == Bytes{9, 9, 9, 200, 200, 200});
  CHECK(convert({9}, PixelMode::gray, PixelMode::rgba) == Bytes{9, 9, 9, 255});
  CHECK(convert({9, 3}, PixelMode::gray_alpha, PixelMode::rgba) == Bytes{9, 9, 9, 3});
  CHECK(convert({9, 3}, PixelMode::gray_alpha, PixelMode::gray) == Bytes{9});
  CHECK(convert({1, 2, 3}, PixelMode::rgb, PixelMode::rgba) == Bytes{1, 2, 3, 255});
}

TEST_CASE("CMYK converts as Pillow's cmyk2rgb, and to gray through RGB") {
  const Bytes cmyk{0, 0, 0, 0, 255, 0, 0, 0, 10, 20, 30, 40, 0, 0, 0, 255};
  CHECK(convert(cmyk, PixelMode::cmyk, PixelMode::rgb) == Bytes{255, 255, 255, 0, 255, 255, 207, 198, 190, 0, 0, 0});
  CHECK(convert(cmyk, PixelMode::cmyk, PixelMode::gray) == Bytes{255, 179, 200, 0});
}

TEST_CASE("BILINEAR downscaling averages with a support that grows with the factor (antialiasing)") {
  const Bytes row{0, 100, 200, 255};
  CHECK(resize(row, Shape{1, 4, 1}, 1, 2) == Bytes{71, 209});
  CHECK(resize(row, Shape{1, 4, 1}, 1, 3) == Bytes{30, 150, 239});
  const Bytes column{10, 20, 30, 250, 0};
  CHECK(resize(column, Shape{5, 1, 1}, 2, 1) == Bytes{30, 110});
}

TEST_CASE("BILINEAR upscaling interpolates between pixel centres, edges clamped") {
  CHECK(resize({0, 100, 200, 255}, Shape{1, 4, 1}, 1, 7) == Bytes{0, 36, 93, 150, 204, 235, 255});
}

TEST_CASE("images with alpha are resized premultiplied, as Pillow does through RGBa and La") {
  // Half-transparent red, opaque blue, transparent green: the transparent pixel's colour weighs nothing.
  CHECK(resize({255, 0, 0, 128, 0, 0, 255, 255, 0, 255, 0, 0}, Shape{1, 3, 4}, 1, 2) ==
        Bytes{115, 0, 139, 176, 0, 0, 255, 96});
  CHECK(resize({200, 10, 50, 255}, Shape{1, 2, 2}, 1, 1) == Bytes{55, 133});
}

TEST_CASE("the same size is a copy, alpha untouched") {
  const Bytes rgba{1, 2, 3, 4, 5, 6, 7, 8};
  CHECK(resize(rgba, Shape{1, 2, 4}, 1, 2) == rgba);
}
