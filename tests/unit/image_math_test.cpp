// The maths behind image_mean() and image_grid() (core/image_math.hpp), checked against plain loops written
// the obvious way: 64-bit sums, division in double, tiles copied pixel by pixel.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "error.hpp"
#include "image_math.hpp"

using imgstore::Error;
using imgstore::ImageGrid;
using imgstore::PixelSum;
using imgstore::Shape;

namespace {

std::vector<std::uint8_t> random_image(std::mt19937& rng, std::size_t bytes) {
  std::vector<std::uint8_t> image(bytes);
  for (auto& b : image) b = static_cast<std::uint8_t>(rng());
  return image;
}

float float_at(const std::vector<std::uint8_t>& le, std::size_t i) {
  const std::uint32_t bits = std::uint32_t{le[4 * i]} | std::uint32_t{le[4 * i + 1]} << 8 |
                             std::uint32_t{le[4 * i + 2]} << 16 | std::uint32_t{le[4 * i + 3]} << 24;
  float f = 0;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace

TEST_CASE("PixelSum: exact sums and means of random images, across the 16-bit partial sums' flushes") {
  const Shape shape{5, 7, 3};
  std::mt19937 rng(7);
  // 1000 images: the partial sums move into the totals after 257, 514 and 771 images, and 229 stay partial.
  for (const std::size_t n : {1, 2, 256, 257, 258, 1000}) {
    CAPTURE(n);
    PixelSum sum(shape, "image_mean()");
    std::vector<std::uint64_t> expected(shape.bytes());
    for (std::size_t k = 0; k < n; ++k) {
      const auto image = random_image(rng, shape.bytes());
      for (std::size_t i = 0; i < image.size(); ++i) expected[i] += image[i];
      sum.add(image);
    }
    CHECK(sum.count() == n);
    REQUIRE(sum.sums() == expected);
    const auto f32 = sum.mean_float32();
    const auto u8 = sum.mean_uint8();
    REQUIRE(f32.size() == shape.bytes() * 4);
    REQUIRE(u8.size() == shape.bytes());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      CHECK(float_at(f32, i) == static_cast<float>(static_cast<double>(expected[i]) / static_cast<double>(n)));
      CHECK(u8[i] == static_cast<std::uint8_t>((2 * expected[i] + n) / (2 * n)));
    }
  }
}

TEST_CASE("PixelSum: 255 in every byte of 100,000 images sums without wrapping") {
  const Shape shape{2, 2, 1};
  PixelSum sum(shape, "image_mean()");
  const std::vector<std::uint8_t> white(4, 255);
  for (int k = 0; k < 100000; ++k) sum.add(white);
  CHECK(sum.sums() == std::vector<std::uint64_t>(4, 25500000));
  CHECK(sum.mean_uint8() == white);
  CHECK(float_at(sum.mean_float32(), 0) == 255.0f);
}

TEST_CASE("PixelSum: float32 little-endian bytes, and uint8 rounded half up") {
  PixelSum sum(Shape{1, 1, 4}, "image_mean()");
  sum.add(std::vector<std::uint8_t>{0, 1, 0, 1});
  sum.add(std::vector<std::uint8_t>{1, 2, 0, 1});
  sum.add(std::vector<std::uint8_t>{0, 0, 1, 2});
  sum.add(std::vector<std::uint8_t>{1, 2, 0, 1});
  // Means 0.5, 1.25, 0.25, 1.25: 0.5 is 0x3F000000, stored low byte first.
  const auto f32 = sum.mean_float32();
  CHECK(std::vector<std::uint8_t>(f32.begin(), f32.begin() + 4) == std::vector<std::uint8_t>{0x00, 0x00, 0x00, 0x3F});
  CHECK(float_at(f32, 1) == 1.25f);
  CHECK(float_at(f32, 2) == 0.25f);
  // A tie goes up (0.5 -> 1), and only a tie: 1.25 -> 1, 0.25 -> 0.
  CHECK(sum.mean_uint8() == std::vector<std::uint8_t>{1, 1, 0, 1});
  PixelSum ties(Shape{1, 1, 2}, "image_mean()");
  ties.add(std::vector<std::uint8_t>{254, 0});
  ties.add(std::vector<std::uint8_t>{255, 1});
  CHECK(ties.mean_uint8() == std::vector<std::uint8_t>{255, 1});  // 254.5 -> 255, 0.5 -> 1
}

TEST_CASE("PixelSum: a wrong length names the function, the length and the shape expected") {
  PixelSum sum(Shape{32, 32, 3}, "image_mean()");
  CHECK_THROWS_WITH_AS(sum.add(std::vector<std::uint8_t>(100)),
                       "image_mean(): pixels of 100 bytes; expected 3072 (shape 32x32x3, HWC uint8)", Error);
  CHECK(sum.count() == 0);
  CHECK_THROWS_AS(sum.mean_float32(), Error);  // no images: no mean (the SQL function returns NULL first)
}

namespace {

// Image k of the grid tests: every byte k + 1, never 0, so that black cells and padding stand out.
std::vector<std::uint8_t> solid(const Shape& shape, std::size_t k) {
  return std::vector<std::uint8_t>(shape.bytes(), static_cast<std::uint8_t>(k + 1));
}

// The byte the grid should hold at (y, x, c): the image whose tile covers it, else 0 (padding, empty cell).
std::uint8_t expected_at(const Shape& tile, std::size_t n, std::size_t columns, std::size_t padding, std::size_t y,
                         std::size_t x) {
  const std::size_t row = y / (tile.height + padding), dy = y % (tile.height + padding);
  const std::size_t column = x / (tile.width + padding), dx = x % (tile.width + padding);
  const std::size_t k = row * columns + column;
  if (dy >= tile.height || dx >= tile.width || k >= n) return 0;
  return static_cast<std::uint8_t>(k + 1);
}

}  // namespace

TEST_CASE("ImageGrid: 40 images of 16x16x3 in 8 columns make 128x80; padding goes between tiles only") {
  const Shape tile{16, 16, 3};
  struct Case {
    std::size_t n, columns, padding;
    Shape grid;
  };
  for (const Case& c : {Case{40, 8, 0, Shape{80, 128, 3}}, Case{37, 8, 0, Shape{80, 128, 3}},
                        Case{41, 8, 2, Shape{106, 142, 3}}, Case{3, 8, 0, Shape{16, 128, 3}},
                        Case{5, 1, 1, Shape{84, 16, 3}}}) {
    CAPTURE(c.n);
    CAPTURE(c.columns);
    CAPTURE(c.padding);
    ImageGrid grid(tile, static_cast<std::int64_t>(c.columns), static_cast<std::int64_t>(c.padding), "image_grid()");
    for (std::size_t k = 0; k < c.n; ++k) grid.add(solid(tile, k));
    REQUIRE(grid.shape() == c.grid);
    const auto pixels = grid.pixels();
    REQUIRE(pixels.size() == c.grid.bytes());
    std::size_t wrong = 0;
    for (std::size_t y = 0; y < c.grid.height; ++y) {
      for (std::size_t x = 0; x < c.grid.width; ++x) {
        for (std::size_t ch = 0; ch < 3; ++ch) {
          wrong += pixels[(y * c.grid.width + x) * 3 + ch] != expected_at(tile, c.n, c.columns, c.padding, y, x);
        }
      }
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("ImageGrid: each tile holds its image's own rows, not only its colour") {
  const Shape tile{3, 2, 1};
  ImageGrid grid(tile, 2, 0, "image_grid()");
  grid.add(std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6});
  grid.add(std::vector<std::uint8_t>{7, 8, 9, 10, 11, 12});
  grid.add(std::vector<std::uint8_t>{13, 14, 15, 16, 17, 18});
  REQUIRE(grid.shape() == Shape{6, 4, 1});
  const std::vector<std::uint8_t> expected = {1,  2,  7,  8,  3,  4,  9,  10, 5,  6,  11, 12,
                                              13, 14, 0,  0,  15, 16, 0,  0,  17, 18, 0,  0};
  CHECK(std::vector<std::uint8_t>(grid.pixels().begin(), grid.pixels().end()) == expected);
}

TEST_CASE("ImageGrid: bad arguments and a grid past 64 MiB are errors naming the value and the limit") {
  const Shape tile{16, 16, 3};
  CHECK_THROWS_WITH_AS(ImageGrid(tile, 0, 0, "image_grid()"),
                       "image_grid(): columns 0; expected a positive number of images per row", Error);
  CHECK_THROWS_WITH_AS(ImageGrid(tile, 4, -1, "image_grid()"),
                       "image_grid(): padding -1; expected 0 or more pixels between images", Error);
  // Arguments whose products overflow 64 bits are refused by division, not wrapped into a small grid.
  const std::int64_t huge = std::numeric_limits<std::int64_t>::max();
  CHECK_THROWS_WITH_AS(ImageGrid(tile, huge, 0, "image_grid()"), doctest::Contains("is over 64 MiB"), Error);
  CHECK_THROWS_WITH_AS(ImageGrid(tile, 2, huge, "image_grid()"), doctest::Contains("is over 64 MiB"), Error);
  ImageGrid tall(tile, 1, huge, "image_grid()");  // one column: padding only between rows
  tall.add(solid(tile, 0));
  CHECK_THROWS_WITH_AS(tall.add(solid(tile, 1)), doctest::Contains("image 2 begins row 2 of the grid"), Error);
  CHECK(tall.shape() == tile);  // the failed image changed nothing
  CHECK_THROWS_WITH_AS(tall.add(std::vector<std::uint8_t>(5)),
                       "image_grid(): pixels of 5 bytes; expected 768 (shape 16x16x3, HWC uint8)", Error);

  // Exactly 64 MiB fits: four rows of four 1024x1024x4 tiles (4 MiB each); the 17th image begins a fifth row.
  const Shape big{1024, 1024, 4};
  ImageGrid grid(big, 4, 0, "image_grid()");
  const std::vector<std::uint8_t> image(big.bytes(), 9);
  for (int k = 0; k < 16; ++k) grid.add(image);
  CHECK(grid.shape() == Shape{4096, 4096, 4});
  CHECK_THROWS_WITH_AS(grid.add(image),
                       "image_grid(): image 17 begins row 5 of the grid, making it 5120x4096x4; expected a grid of at "
                       "most 64 MiB of pixels (fewer images, e.g. a LIMIT)",
                       Error);
  CHECK(grid.count() == 16);
}
