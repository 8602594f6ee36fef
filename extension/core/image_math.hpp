// Arithmetic over many images of one shape, behind the image_mean() and image_grid() aggregates: an exact
// per-pixel sum and the tiling of a grid, free of SQLite so that the unit tests check the maths alone.
//
//   PixelSum sum(shape, "image_mean()");
//   for (each image) sum.add(pixels);       // HWC uint8, shape.bytes() each
//   sum.mean_float32();                     // H*W*C float32, little-endian
//
//   ImageGrid grid(tile, columns, padding, "image_grid()");
//   for (each image) grid.add(pixels);      // placed left to right, top to bottom
//   png_encode(grid.pixels(), grid.shape(), ...);
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "shape.hpp"

namespace imgstore {

// The error for pixels whose length is not the shape's, worded for the functions that take a shape:
// "image_mean(): pixels of 100 bytes; expected 3072 (shape 32x32x3, HWC uint8)". `what` names the function.
void check_image_bytes(std::size_t size, const Shape& shape, const std::string& what);

// The per-pixel sum of any number of images of one shape, exact (no rounding before the final division).
class PixelSum {
 public:
  PixelSum(const Shape& shape, std::string what);

  // Adds one image; a length other than shape.bytes() is an error naming `what`.
  void add(std::span<const std::uint8_t> pixels);

  const Shape& shape() const noexcept { return shape_; }
  std::uint64_t count() const noexcept { return count_; }
  // The exact sum of each byte over the images added (H*W*C values).
  std::vector<std::uint64_t> sums() const;
  // The mean of each byte, sum / count rounded once to float32, as H*W*C*4 bytes, little-endian (numpy's
  // '<f4'); the same value as numpy's images.mean(axis=0).astype('<f4'). Needs count() > 0.
  std::vector<std::uint8_t> mean_float32() const;
  // The mean rounded half up to uint8 (floor(sum / count + 1/2), in integers): H*W*C bytes. Needs count() > 0.
  std::vector<std::uint8_t> mean_uint8() const;

 private:
  Shape shape_;
  std::string what_;
  std::uint64_t count_ = 0;
  // Each image adds into 16-bit partial sums, which move into the 64-bit totals every 257 images (257 x 255 =
  // 65535 still fits): widening a byte to 16 bits is four times faster than to 64 bits (1.2 GB/s against
  // 4.8 GB/s over 100,000 images of 32x32x3, where reading memory alone runs at about 7 GB/s).
  std::vector<std::uint64_t> totals_;
  std::vector<std::uint16_t> partial_;
  std::uint32_t in_partial_ = 0;  // images in partial_ since it was last emptied
};

// Largest grid image_grid() makes: 64 MiB of pixels, the largest image png_decode() reads back.
inline constexpr std::size_t max_grid_bytes = max_image_bytes;

// Images of one shape laid out as tiles in rows of `columns`, left to right and top to bottom, `padding`
// black pixels between neighbouring tiles (not around the edge). The grid is always `columns` tiles wide;
// cells after the last image are black. n images make ceil(n / columns) rows of tiles:
// width = columns*W + (columns-1)*padding, height = rows*H + (rows-1)*padding.
class ImageGrid {
 public:
  // columns >= 1 and padding >= 0 are checked here (int64, as SQL passes them), naming `what`.
  ImageGrid(const Shape& tile, std::int64_t columns, std::int64_t padding, std::string what);

  // Places one image in the next cell. An image that would take the grid past max_grid_bytes is an error
  // naming the grid's size, before anything is allocated for it.
  void add(std::span<const std::uint8_t> pixels);

  std::uint64_t count() const noexcept { return count_; }
  const Shape& tile() const noexcept { return tile_; }
  // The grid so far (count() > 0): its shape and its HWC pixels.
  Shape shape() const;
  std::span<const std::uint8_t> pixels() const noexcept { return canvas_; }

 private:
  Shape tile_;
  std::uint64_t columns_;
  std::uint64_t padding_;
  std::string what_;
  std::uint64_t count_ = 0;
  std::uint64_t width_;      // pixels
  std::uint64_t height_ = 0;  // pixels, grown a row of tiles at a time
  std::vector<std::uint8_t> canvas_;
};

}  // namespace imgstore
