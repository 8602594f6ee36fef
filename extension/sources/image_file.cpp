#include "image_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <span>

#include "error.hpp"
#include "image_convert.hpp"
#include "image_resize.hpp"
#include "jpeg_codec.hpp"
#include "png_codec.hpp"
#include "posix_file.hpp"

namespace imgstore {

namespace {

bool starts_with(std::span<const std::uint8_t> bytes, std::string_view prefix) {
  const auto same = [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; };
  return bytes.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), bytes.begin(), same);
}

bool is_png(std::span<const std::uint8_t> bytes) { return starts_with(bytes, "\x89PNG\r\n\x1a\n"); }

// The formats ImageFolder lists that imgstore does not decode, named for the error.
std::string format_of(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return "an empty file";
  // The start of PNG's signature and then the end of the file: a PNG cut short, not another format.
  const std::string_view png_signature("\x89PNG\r\n\x1a\n", 8);
  if (bytes.size() < png_signature.size() && starts_with(bytes, png_signature.substr(0, bytes.size()))) {
    return "a truncated PNG file (" + std::to_string(bytes.size()) + " bytes, less than its 8-byte signature)";
  }
  if (starts_with(bytes, "BM")) return "a BMP file";
  if (starts_with(bytes, "GIF8")) return "a GIF file";
  if (starts_with(bytes, std::string_view("II*\0", 4)) || starts_with(bytes, std::string_view("MM\0*", 4))) {
    return "a TIFF file";
  }
  if (bytes.size() >= 12 && starts_with(bytes, "RIFF") && starts_with(bytes.subspan(8), "WEBP")) return "a WebP file";
  if (bytes.size() >= 2 && bytes[0] == 'P' && bytes[1] >= '1' && bytes[1] <= '7') return "a PNM (PPM/PGM) file";
  std::string hex;
  for (std::size_t i = 0; i < bytes.size() && i < 4; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%s%02X", i == 0 ? "" : " ", bytes[i]);
    hex += b;
  }
  return "not an image file imgstore knows (its first bytes are " + hex + ")";
}

// The whole file. O_NONBLOCK so that a FIFO named x.png does not hang the statement before fstat refuses it.
void read_file(const std::string& path, const std::string& fn, std::vector<std::uint8_t>& out) {
  const Fd fd = open_or_throw(path, O_RDONLY | O_NONBLOCK, fn + "()");
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) throw_errno(fn + "(): cannot stat '" + path + "'", errno);
  if (!S_ISREG(st.st_mode)) {
    throw Error(fn + "(): '" + path + "' is not a regular file; expected a PNG or JPEG file", ErrorKind::cantopen);
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_image_file_bytes) {
    throw Error(fn + "(): '" + path + "' is " + std::to_string(st.st_size) + " bytes, more than the " +
                    std::to_string(max_image_file_bytes >> 20) + " MiB of any image imgstore reads",
                ErrorKind::mismatch);
  }
  out.resize(static_cast<std::size_t>(st.st_size));
  out.resize(read_up_to(fd.get(), out, path, fn + "()"));
}

// Scratch buffers kept per thread (the workers decode image after image), let go when one image made them big.
struct Scratch {
  std::vector<std::uint8_t> file;
  std::vector<std::uint8_t> decoded;
  std::vector<std::uint8_t> converted;
  void trim() {
    constexpr std::size_t kKeep = std::size_t{8} << 20;
    for (auto* v : {&file, &decoded, &converted}) {
      if (v->capacity() > kKeep) std::vector<std::uint8_t>().swap(*v);
    }
  }
};

}  // namespace

ImageFile read_image_file(const std::string& path, const std::optional<Shape>& target, bool want_pixels,
                          const std::string& fn) {
  ImageFile image;
  if (target && !want_pixels) {
    image.shape = *target;
    return image;
  }
  thread_local Scratch scratch;
  const std::string what = fn + "(): '" + path + "'";
  read_file(path, fn, scratch.file);
  const bool png = is_png(scratch.file);
  if (!png && !is_jpeg(scratch.file)) {
    throw Error(what + " is " + format_of(scratch.file) + "; imgstore reads PNG and JPEG", ErrorKind::mismatch);
  }
  if (!want_pixels) {
    image.shape = png ? png_peek_shape(scratch.file, what) : jpeg_peek(scratch.file, what).shape;
    return image;
  }
  // Without a target the decoder writes straight into the row's own buffer; with one, into scratch.
  std::vector<std::uint8_t>& decoded = target ? scratch.decoded : image.pixels;
  PixelMode mode = PixelMode::gray;
  if (png) {
    image.shape = png_decode(scratch.file, decoded, what);
    mode = mode_of_channels(image.shape.channels);
  } else {
    const JpegHeader header = jpeg_decode(scratch.file, decoded, what);
    image.shape = header.shape;
    mode = header.cmyk ? PixelMode::cmyk : mode_of_channels(image.shape.channels);
  }
  image.has_pixels = true;
  if (!target) {
    scratch.trim();
    return image;
  }
  const PixelMode to = mode_of_channels(target->channels);
  const std::size_t count = std::size_t{image.shape.height} * image.shape.width;
  const std::vector<std::uint8_t>* converted = &scratch.decoded;
  if (mode != to) {
    convert_pixels(scratch.decoded, count, mode, to, scratch.converted);
    converted = &scratch.converted;
  }
  resize_bilinear(*converted, Shape{image.shape.height, image.shape.width, target->channels}, target->height,
                  target->width, image.pixels);
  image.shape = *target;
  scratch.trim();
  return image;
}

}  // namespace imgstore
