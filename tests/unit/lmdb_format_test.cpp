// lmdb_format: the value header and the store's description, byte for byte as lmdb_format.hpp documents them.
#include <doctest/doctest.h>

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "checksum.hpp"
#include "error.hpp"
#include "lmdb_format.hpp"

namespace fmt = imgstore::lmdb_format;
using fmt::Version;
using imgstore::Error;
using imgstore::ErrorKind;

TEST_CASE("a format-2 value is the label and the checksum, 8 bytes little-endian each, then the pixels") {
  std::vector<std::uint8_t> pixels(12);
  std::iota(pixels.begin(), pixels.end(), 1);
  std::vector<std::uint8_t> value(fmt::value_bytes(Version::v2, pixels.size()));
  CHECK(value.size() == 16 + 12);
  fmt::encode_value(Version::v2, 17, -2, pixels, value);
  CHECK(value[0] == 0xfe);  // -2, little-endian
  CHECK(value[7] == 0xff);
  const std::uint64_t sum = imgstore::image_checksum(17, -2, pixels);
  for (int i = 0; i < 8; ++i) CHECK(value[8 + i] == static_cast<std::uint8_t>(sum >> (8 * i)));
  CHECK(std::memcmp(value.data() + 16, pixels.data(), pixels.size()) == 0);

  const auto decoded = fmt::decode_value(Version::v2, value, pixels.size());
  REQUIRE(decoded);
  CHECK(decoded->label == -2);
  CHECK(decoded->checksum == sum);
  CHECK(fmt::expected_checksum(17, *decoded) == sum);
  CHECK(fmt::expected_checksum(18, *decoded) != sum);  // the id is in the seed: a value under another key fails
  CHECK(std::equal(decoded->pixels.begin(), decoded->pixels.end(), pixels.begin(), pixels.end()));
  // A flipped pixel or label byte fails the check.
  value[20] ^= 1;
  CHECK(fmt::expected_checksum(17, *fmt::decode_value(Version::v2, value, pixels.size())) != sum);
  value[20] ^= 1;
  value[3] ^= 1;
  CHECK(fmt::expected_checksum(17, *fmt::decode_value(Version::v2, value, pixels.size())) != sum);
  // The wrong size is no value at all.
  CHECK_FALSE(fmt::decode_value(Version::v2, std::span(value).first(27), pixels.size()));
  CHECK_FALSE(fmt::decode_value(Version::v2, value, pixels.size() + 1));
}

TEST_CASE("a format-1 value is the label then the pixels, with no checksum") {
  const std::vector<std::uint8_t> pixels{9, 8, 7};
  std::vector<std::uint8_t> value(fmt::value_bytes(Version::v1, pixels.size()));
  CHECK(value.size() == 11);
  fmt::encode_value(Version::v1, 5, 0x0102030405060708, pixels, value);
  CHECK(value[0] == 8);
  CHECK(value[8] == 9);
  const auto decoded = fmt::decode_value(Version::v1, value, pixels.size());
  REQUIRE(decoded);
  CHECK(decoded->label == 0x0102030405060708);
  CHECK_FALSE(decoded->checksum);
  CHECK(decoded->pixels.size() == 3);
}

TEST_CASE("the description is two lines, parsed strictly") {
  const imgstore::Shape shape{32, 32, 3};
  CHECK(fmt::meta_text(shape) == "imgstore-lmdb 2\nshape=32x32x3\n");
  CHECK(fmt::parse_meta(fmt::meta_text(shape), "d") == shape);
  for (const char* bad : {"", "imgstore-lmdb 1\nshape=32x32x3\n", "imgstore-lmdb 2\nshape=32x32x3",
                          "imgstore-lmdb 2\nshape=32x32x3\nextra=1\n", "imgstore-lmdb 2\nshape=0x32x3\n",
                          "imgstore-lmdb 2\nshape=32x32\n", "imgstore-png_dir 1\nshape=32x32x3\n",
                          "imgstore-lmdb 2\nshape=32X32x3\n", "imgstore-lmdb 2\nshape=032x32x3\n"}) {
    CAPTURE(bad);
    try {
      (void)fmt::parse_meta(bad, "table t: 'x.lmdb/.imgstore'");
      FAIL("parsed");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::corrupt);
      CHECK(std::string(e.what()).find("table t: 'x.lmdb/.imgstore'") == 0);
    }
  }
}

TEST_CASE("a relabelled value checks with its new label, and a damaged one stays damaged") {
  std::vector<std::uint8_t> pixels(30, 7);
  std::vector<std::uint8_t> value(fmt::value_bytes(Version::v2, pixels.size()));
  fmt::encode_value(Version::v2, 3, 1, pixels, value);
  fmt::relabel_value(Version::v2, 3, 9, value);
  auto decoded = *fmt::decode_value(Version::v2, value, pixels.size());
  CHECK(decoded.label == 9);
  CHECK(fmt::expected_checksum(3, decoded) == decoded.checksum);
  value[16 + 5] ^= 0x10;  // a damaged pixel, then a new label: still refused
  fmt::relabel_value(Version::v2, 3, 4, value);
  decoded = *fmt::decode_value(Version::v2, value, pixels.size());
  CHECK(decoded.label == 4);
  CHECK(fmt::expected_checksum(3, decoded) != decoded.checksum);
  std::vector<std::uint8_t> v1(fmt::value_bytes(Version::v1, 2));
  fmt::relabel_value(Version::v1, 3, -1, v1);
  CHECK(fmt::decode_label(v1.data()) == -1);
}

TEST_CASE("a value of a store of shape 'any' records its image's shape, and its checksum covers it") {
  const imgstore::Shape any = imgstore::Shape::any_size();
  const imgstore::Shape shape{2, 3, 2};
  std::vector<std::uint8_t> pixels(shape.bytes());
  std::iota(pixels.begin(), pixels.end(), 1);
  std::vector<std::uint8_t> value(fmt::value_bytes(Version::v2, shape.bytes(), true));
  CHECK(value.size() == 32 + 12);
  fmt::encode_value(Version::v2, any, 9, 4, shape, pixels, value);
  CHECK(value[16] == 2);  // height, width, channels: little-endian uint32 at 16, 20, 24; zero at 28
  CHECK(value[20] == 3);
  CHECK(value[24] == 2);
  CHECK(value[28] == 0);
  CHECK(std::memcmp(value.data() + 32, pixels.data(), pixels.size()) == 0);
  const std::uint64_t sum = imgstore::image_checksum(9, 4, pixels) ^ imgstore::shape_term(shape);
  const auto decoded = fmt::decode_value(Version::v2, value, any);
  REQUIRE(decoded);
  CHECK(decoded->shape == shape);
  CHECK(decoded->checksum == sum);
  CHECK(fmt::expected_checksum(9, *decoded) == sum);
  CHECK(fmt::pixel_checksum(*decoded) == imgstore::image_checksum(9, 4, pixels));
  // Height and width swapped: the same length, a wrong checksum.
  value[16] = 3;
  value[20] = 2;
  const auto swapped = fmt::decode_value(Version::v2, value, any);
  REQUIRE(swapped);
  CHECK(fmt::expected_checksum(9, *swapped) != sum);
  // A shape that disagrees with the length, no channels, five channels, a non-zero pad: no value.
  value[16] = 4;
  CHECK_FALSE(fmt::decode_value(Version::v2, value, any));
  value[16] = 3;
  value[24] = 0;
  CHECK_FALSE(fmt::decode_value(Version::v2, value, any));
  value[24] = 5;
  CHECK_FALSE(fmt::decode_value(Version::v2, value, any));
  value[24] = 2;
  value[30] = 1;
  CHECK_FALSE(fmt::decode_value(Version::v2, value, any));
  CHECK_FALSE(fmt::decode_value(Version::v2, std::span(value).first(31), any));
  // The description says shape=any.
  CHECK(fmt::meta_text(any) == "imgstore-lmdb 2\nshape=any\n");
  CHECK(fmt::parse_meta("imgstore-lmdb 2\nshape=any\n", "d").any);
}
