#include "image_math.hpp"

#include <bit>
#include <cstring>
#include <utility>

#include "error.hpp"

namespace imgstore {

void check_image_bytes(std::size_t size, const Shape& shape, const std::string& what) {
  if (size != shape.bytes()) {
    throw Error(what + ": pixels of " + std::to_string(size) + " bytes; expected " + std::to_string(shape.bytes()) +
                    " (shape " + shape.str() + ", HWC uint8)",
                ErrorKind::mismatch);
  }
}

// --- PixelSum ------------------------------------------------------------------------------------------------

namespace {

// 257 images of 255 at most: 65535, the largest 16-bit value.
constexpr std::uint32_t kPartialImages = 257;

}  // namespace

PixelSum::PixelSum(const Shape& shape, std::string what)
    : shape_(shape), what_(std::move(what)), totals_(shape.bytes()), partial_(shape.bytes()) {}

void PixelSum::add(std::span<const std::uint8_t> pixels) {
  check_image_bytes(pixels.size(), shape_, what_);
  if (in_partial_ == kPartialImages) {
    std::uint64_t* const totals = totals_.data();
    std::uint16_t* const partial = partial_.data();
    for (std::size_t i = 0; i < totals_.size(); ++i) totals[i] += std::exchange(partial[i], 0);
    in_partial_ = 0;
  }
  // A plain indexed loop, which GCC vectorises (16 bytes a step, behind a run-time check that the two do not overlap).
  std::uint16_t* const partial = partial_.data();
  const std::uint8_t* const bytes = pixels.data();
  for (std::size_t i = 0; i < partial_.size(); ++i) partial[i] = static_cast<std::uint16_t>(partial[i] + bytes[i]);
  ++in_partial_;
  ++count_;
}

std::vector<std::uint64_t> PixelSum::sums() const {
  std::vector<std::uint64_t> out(totals_.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = totals_[i] + partial_[i];
  return out;
}

namespace {

void require_images(std::uint64_t count, const std::string& what) {
  if (count == 0) throw Error(what + ": the mean of no images");  // the SQL functions return NULL before this
}

}  // namespace

std::vector<std::uint8_t> PixelSum::mean_float32() const {
  require_images(count_, what_);
  std::vector<std::uint8_t> out(totals_.size() * 4);
  const double n = static_cast<double>(count_);
  for (std::size_t i = 0; i < totals_.size(); ++i) {
    // One rounding, as numpy's: the exact sum divided in double (exact below 2^53), then to float32.
    const float mean = static_cast<float>(static_cast<double>(totals_[i] + partial_[i]) / n);
    const std::uint32_t bits = std::bit_cast<std::uint32_t>(mean);
    for (int b = 0; b < 4; ++b) out[i * 4 + b] = static_cast<std::uint8_t>(bits >> (8 * b));  // little-endian on any host
  }
  return out;
}

std::vector<std::uint8_t> PixelSum::mean_uint8() const {
  require_images(count_, what_);
  std::vector<std::uint8_t> out(totals_.size());
  for (std::size_t i = 0; i < totals_.size(); ++i) {
    // floor(sum / n + 1/2) = floor((2 sum + n) / 2n), exact in integers (no tie rounded the wrong way).
    out[i] = static_cast<std::uint8_t>((2 * (totals_[i] + partial_[i]) + count_) / (2 * count_));
  }
  return out;
}

// --- ImageGrid -----------------------------------------------------------------------------------------------

ImageGrid::ImageGrid(const Shape& tile, std::int64_t columns, std::int64_t padding, std::string what)
    : tile_(tile), what_(std::move(what)) {
  if (columns < 1) {
    throw Error(what_ + ": columns " + std::to_string(columns) + "; expected a positive number of images per row",
                ErrorKind::mismatch);
  }
  if (padding < 0) {
    throw Error(what_ + ": padding " + std::to_string(padding) + "; expected 0 or more pixels between images",
                ErrorKind::mismatch);
  }
  columns_ = static_cast<std::uint64_t>(columns);
  padding_ = static_cast<std::uint64_t>(padding);
  // The first row of tiles must fit: columns*W + (columns-1)*padding pixels wide, checked by division so that
  // no product can overflow whatever the arguments.
  const std::uint64_t widest = max_grid_bytes / (std::uint64_t{tile.height} * tile.channels);
  const bool fits = columns_ <= widest / tile.width &&
                    (columns_ == 1 || padding_ <= (widest - columns_ * tile.width) / (columns_ - 1));
  if (!fits) {
    throw Error(what_ + ": a row of " + std::to_string(columns_) + " images of " + tile.str() + " with padding " +
                    std::to_string(padding_) + " is over " + std::to_string(max_grid_bytes >> 20) +
                    " MiB; expected a grid of at most " + std::to_string(max_grid_bytes >> 20) + " MiB of pixels",
                ErrorKind::mismatch);
  }
  width_ = columns_ * tile.width + (columns_ - 1) * padding_;
}

void ImageGrid::add(std::span<const std::uint8_t> pixels) {
  check_image_bytes(pixels.size(), tile_, what_);
  const std::uint64_t row = count_ / columns_;
  const std::uint64_t column = count_ % columns_;
  const std::size_t pixel = tile_.channels;
  if (column == 0) {
    // A new row of tiles: the canvas grows by the padding above it and its height, zeroed (black).
    const std::uint64_t height = height_ + (row > 0 ? padding_ : 0) + tile_.height;
    if (height > max_grid_bytes / (width_ * pixel)) {
      throw Error(what_ + ": image " + std::to_string(count_ + 1) + " begins row " + std::to_string(row + 1) +
                      " of the grid, making it " + std::to_string(height) + "x" + std::to_string(width_) + "x" +
                      std::to_string(pixel) + "; expected a grid of at most " + std::to_string(max_grid_bytes >> 20) +
                      " MiB of pixels (fewer images, e.g. a LIMIT)",
                  ErrorKind::mismatch);
    }
    canvas_.resize(height * width_ * pixel);
    height_ = height;
  }
  const std::size_t top = row * (tile_.height + padding_);
  const std::size_t left = column * (tile_.width + padding_);
  const std::size_t tile_stride = std::size_t{tile_.width} * pixel;
  const std::size_t canvas_stride = width_ * pixel;
  for (std::size_t y = 0; y < tile_.height; ++y) {
    std::memcpy(canvas_.data() + (top + y) * canvas_stride + left * pixel, pixels.data() + y * tile_stride, tile_stride);
  }
  ++count_;
}

Shape ImageGrid::shape() const { return make_shape(height_, width_, tile_.channels, what_); }

}  // namespace imgstore
