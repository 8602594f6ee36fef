// JPEG decoding and encoding in memory with TurboJPEG (libjpeg-turbo), shared by image_folder() and the jpeg_*
// functions. Decoding gives the pixels Pillow's Image.open gives for the same file: both run libjpeg-turbo with
// the accurate integer DCT and fancy (smooth) chroma upsampling, and CMYK comes out with Adobe's inverted
// polarity as Pillow's "CMYK;I" reads it. Errors come back as imgstore::Error naming `what` (a file, a function).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "shape.hpp"

namespace imgstore {

// True when the bytes start as every JPEG does: the SOI marker and the next marker's 0xFF.
bool is_jpeg(std::span<const std::uint8_t> bytes);

// What a JPEG decodes to: gray -> 1 channel, YCbCr or RGB -> 3 (RGB), CMYK or YCCK -> 4 (CMYK, not RGBA: the
// caller converts it as Pillow converts mode CMYK).
struct JpegHeader {
  Shape shape;
  bool cmyk = false;
};

// Reads the header only. Refuses an image over max_image_bytes before anything is allocated for it.
JpegHeader jpeg_peek(std::span<const std::uint8_t> jpeg, const std::string& what);

// Decodes into `out` (resized, capacity reused). A file cut short is an error, as Pillow's "image file is
// truncated" is; libjpeg's other warnings (extraneous bytes, a bad Huffman code) are not, as in Pillow.
JpegHeader jpeg_decode(std::span<const std::uint8_t> jpeg, std::vector<std::uint8_t>& out, const std::string& what);

// Encodes HWC pixels of 1 (gray) or 3 (RGB) channels as a baseline JFIF JPEG at `quality` 1..100, with Pillow's
// defaults otherwise: 4:2:0 chroma subsampling, the accurate DCT. 2 and 4 channels are refused (JPEG has no
// alpha). Appends to `out` (cleared first).
void jpeg_encode(std::span<const std::uint8_t> pixels, const Shape& shape, int quality, std::vector<std::uint8_t>& out,
                 const std::string& what);

}  // namespace imgstore
