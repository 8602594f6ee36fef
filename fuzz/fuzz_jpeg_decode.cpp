// jpeg_decode and jpeg_peek on any bytes: a shape and pixels, or an Error; never a crash, a hang, or an
// allocation of what a header claims beyond 64 MiB. A decoded image then goes through Pillow's conversion and
// BILINEAR resize (image_convert, image_resize) to a small shape taken from the input's last bytes, as
// image_folder() with a shape would: arbitrary sizes up and down, every channel count.
#include <vector>

#include "error.hpp"
#include "image_convert.hpp"
#include "image_resize.hpp"
#include "jpeg_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> pixels;
  try {
    const auto header = imgstore::jpeg_decode({data, size}, pixels, "fuzz");
    if (pixels.size() != header.shape.bytes()) __builtin_trap();
    if (!(imgstore::jpeg_peek({data, size}, "fuzz").shape == header.shape)) __builtin_trap();
    if (size >= 3 && header.shape.bytes() <= (std::size_t{1} << 20)) {
      const std::uint32_t channels = 1 + data[size - 1] % 4;
      const std::uint32_t height = 1 + data[size - 2] % 48;
      const std::uint32_t width = 1 + data[size - 3] % 48;
      const auto from = header.cmyk ? imgstore::PixelMode::cmyk : imgstore::mode_of_channels(header.shape.channels);
      std::vector<std::uint8_t> converted;
      std::vector<std::uint8_t> resized;
      const std::size_t count = std::size_t{header.shape.height} * header.shape.width;
      imgstore::convert_pixels(pixels, count, from, imgstore::mode_of_channels(channels), converted);
      imgstore::resize_bilinear(converted, imgstore::Shape{header.shape.height, header.shape.width, channels}, height,
                                width, resized);
      if (resized.size() != std::size_t{height} * width * channels) __builtin_trap();
    }
  } catch (const imgstore::Error&) {
  }
  try {
    (void)imgstore::jpeg_peek({data, size}, "fuzz");
  } catch (const imgstore::Error&) {
  }
  return 0;
}
