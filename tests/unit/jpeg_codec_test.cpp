// The JPEG codec's own checks; its agreement with Pillow on real files of every kind is tested from Python
// (tests/python/test_image_folder.py), where Pillow is.
#include <doctest/doctest.h>

#include <vector>

#include "error.hpp"
#include "jpeg_codec.hpp"

using imgstore::Error;
using imgstore::Shape;
using Bytes = std::vector<std::uint8_t>;

namespace {

Bytes gradient(const Shape& shape) {
  Bytes pixels(shape.bytes());
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7 % 256);
  return pixels;
}

Bytes encoded(const Shape& shape, int quality = 75) {
  Bytes jpeg;
  imgstore::jpeg_encode(gradient(shape), shape, quality, jpeg, "test");
  return jpeg;
}

// The offset of the SOF0 marker's height field.
std::size_t sof_size_at(const Bytes& jpeg) {
  for (std::size_t i = 2; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) return i + 5;
  }
  FAIL("no SOF0");
  return 0;
}

}  // namespace

TEST_CASE("gray and RGB round-trip with their shapes; quality 100 of a flat image is exact") {
  for (const Shape shape : {Shape{37, 23, 1}, Shape{37, 23, 3}, Shape{1, 1, 3}}) {
    const Bytes jpeg = encoded(shape);
    CHECK(imgstore::is_jpeg(jpeg));
    CHECK(imgstore::jpeg_peek(jpeg, "t").shape == shape);
    Bytes pixels;
    const auto header = imgstore::jpeg_decode(jpeg, pixels, "t");
    CHECK(header.shape == shape);
    CHECK_FALSE(header.cmyk);
    CHECK(pixels.size() == shape.bytes());
  }
  const Shape flat{16, 16, 3};
  Bytes jpeg;
  imgstore::jpeg_encode(Bytes(flat.bytes(), 77), flat, 100, jpeg, "t");
  Bytes pixels;
  imgstore::jpeg_decode(jpeg, pixels, "t");
  CHECK(pixels == Bytes(flat.bytes(), 77));
}

TEST_CASE("encoding refuses alpha, a wrong length and a quality out of range, naming what was expected") {
  Bytes out;
  CHECK_THROWS_WITH_AS(imgstore::jpeg_encode(Bytes(32), Shape{4, 4, 2}, 75, out, "jpeg_encode()"),
                       "jpeg_encode(): shape 4x4x2 has 2 channels; expected 1 (gray) or 3 (RGB): JPEG has no alpha "
                       "channel",
                       Error);
  CHECK_THROWS_WITH_AS(imgstore::jpeg_encode(Bytes(47), Shape{4, 4, 3}, 75, out, "jpeg_encode()"),
                       "jpeg_encode(): pixels are 47 bytes; expected 48 for shape 4x4x3", Error);
  CHECK_THROWS_WITH_AS(imgstore::jpeg_encode(Bytes(48), Shape{4, 4, 3}, 0, out, "jpeg_encode()"),
                       "jpeg_encode(): quality 0 is out of range; expected 1 to 100", Error);
}

TEST_CASE("decoding refuses what is not a JPEG, a cut file and a header beyond 64 MiB") {
  Bytes out;
  CHECK_THROWS_WITH_AS(imgstore::jpeg_decode(Bytes{}, out, "f"), "f: not a JPEG (no bytes)", Error);
  CHECK_THROWS_WITH_AS(imgstore::jpeg_decode(Bytes{0x89, 'P', 'N', 'G'}, out, "f"),
                       "f: not a JPEG (it does not start with FF D8 FF)", Error);
  const Bytes whole = encoded(Shape{40, 30, 3});
  // Cut anywhere in the image data, or only its final EOI marker gone: Pillow says "image file is truncated".
  for (const std::size_t cut : {std::size_t{2}, std::size_t{50}, whole.size() / 2}) {
    const Bytes part(whole.begin(), whole.end() - static_cast<std::ptrdiff_t>(cut));
    CHECK_THROWS_WITH_AS(imgstore::jpeg_decode(part, out, "f"), "f: truncated JPEG (the data ends before the image does)",
                         Error);
  }
  // Cut inside the header too (Pillow: "Truncated File Read").
  const Bytes header_only(whole.begin(), whole.begin() + 20);
  CHECK_THROWS_WITH_AS(imgstore::jpeg_decode(header_only, out, "f"), "f: truncated JPEG (the data ends before the image does)",
                       Error);
  // Whole but holding no image (SOI, then EOI).
  CHECK_THROWS_WITH_AS(imgstore::jpeg_decode(Bytes{0xFF, 0xD8, 0xFF, 0xD9}, out, "f"),
                       doctest::Contains("f: not a readable JPEG ("), Error);
  Bytes huge = encoded(Shape{8, 8, 3});
  const std::size_t at = sof_size_at(huge);
  huge[at] = 0xEA;  // height 60000
  huge[at + 1] = 0x60;
  huge[at + 2] = 0xEA;  // width 60000
  huge[at + 3] = 0x60;
  CHECK_THROWS_WITH_AS(imgstore::jpeg_peek(huge, "f"), "f: shape '60000x60000x3' is larger than 64 MiB per image", Error);
  CHECK_THROWS_WITH_AS(imgstore::jpeg_decode(huge, out, "f"), "f: shape '60000x60000x3' is larger than 64 MiB per image",
                       Error);
}

TEST_CASE("a failed decode leaves the thread's decoder ready for the next file") {
  // TurboJPEG 2.1 leaves its instance mid-header after a libjpeg error there; the next header was read from that
  // state until the codec made a fresh instance after each failure.
  const Bytes good = encoded(Shape{16, 16, 3});
  Bytes out;
  for (const std::size_t keep : {std::size_t{20}, std::size_t{200}, good.size() / 2}) {
    const Bytes cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(keep));
    CHECK_THROWS_AS(imgstore::jpeg_decode(cut, out, "f"), Error);
    CHECK(imgstore::jpeg_peek(good, "f").shape == Shape{16, 16, 3});
    CHECK(imgstore::jpeg_decode(good, out, "f").shape == Shape{16, 16, 3});
  }
}
