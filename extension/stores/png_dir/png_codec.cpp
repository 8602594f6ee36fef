#include "png_codec.hpp"

#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>
#include <exception>

#include "error.hpp"

namespace imgstore {

namespace {

// libpng reports errors by calling our handler, which must not return: it records the message and longjmps
// back to the setjmp in run_guarded. No C++ object with a destructor lives between the two (see below).
// No C++ exception may cross libpng's C frames either: the callbacks are noexcept, and one whose C++ work
// throws keeps the exception here and stops libpng with png_error; it is rethrown once libpng has returned.
struct Context {
  char message[256] = {};
  std::span<const std::uint8_t> input;
  std::size_t offset = 0;
  std::vector<std::uint8_t>* output = nullptr;
  std::exception_ptr failure;  // thrown inside a callback
};

[[noreturn]] void on_error(png_structp png, png_const_charp message) noexcept {
  auto* ctx = static_cast<Context*>(png_get_error_ptr(png));
  std::snprintf(ctx->message, sizeof ctx->message, "%s", message);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) noexcept {}  // warnings (e.g. bad CRC in ancillary chunks) are not errors

void read_bytes(png_structp png, png_bytep data, png_size_t size) noexcept {
  auto* ctx = static_cast<Context*>(png_get_io_ptr(png));
  if (ctx->input.size() - ctx->offset < size) png_error(png, "the PNG data ends early (truncated)");
  std::memcpy(data, ctx->input.data() + ctx->offset, size);
  ctx->offset += size;
}

void write_bytes(png_structp png, png_bytep data, png_size_t size) noexcept {
  auto* ctx = static_cast<Context*>(png_get_io_ptr(png));
  try {
    ctx->output->insert(ctx->output->end(), data, data + size);  // may throw std::bad_alloc
    return;
  } catch (...) {
    ctx->failure = std::current_exception();
  }
  // Outside the handler: a longjmp out of a catch block would skip the end of the catch.
  png_error(png, "writing the PNG data failed");
}

void flush_nothing(png_structp) noexcept {}

// libpng's allocations through a small per-thread cache of freed blocks. Every encode allocates zlib's
// deflate state (about 270 KB at level 6) and frees it again; with glibc's malloc that memory sits at the top
// of the heap, so each image cost a brk up and a brk down (trimming) and fresh zeroed pages: 8-9% of a
// single-threaded INSERT in perf. Reusing the blocks removes that; the cache holds a few blocks per thread.
class BlockCache {
 public:
  ~BlockCache() {
    for (const auto& block : free_) std::free(block.second);
  }
  void* take(std::size_t size) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->first == size) {
        void* const block = it->second;
        *it = free_.back();
        free_.pop_back();
        return block;
      }
    }
    return nullptr;
  }
  bool keep(std::size_t size, void* block) {
    if (free_.size() >= kBlocks) return false;
    free_.emplace_back(size, block);
    return true;
  }

 private:
  static constexpr std::size_t kBlocks = 16;
  std::vector<std::pair<std::size_t, void*>> free_;
};

thread_local BlockCache block_cache;
constexpr std::size_t kHeader = 16;  // the block's size, keeping malloc's 16-byte alignment

png_voidp cached_malloc(png_structp, png_alloc_size_t size) noexcept {
  void* block = block_cache.take(size);
  if (block == nullptr) block = std::malloc(size + kHeader);
  if (block == nullptr) return nullptr;  // libpng reports the failure
  std::memcpy(block, &size, sizeof size);
  return static_cast<char*>(block) + kHeader;
}

void cached_free(png_structp, png_voidp ptr) noexcept {
  if (ptr == nullptr) return;
  void* const block = static_cast<char*>(ptr) - kHeader;
  std::size_t size = 0;
  std::memcpy(&size, block, sizeof size);
  if (!block_cache.keep(size, block)) std::free(block);
}

class Reader {
 public:
  explicit Reader(Context& ctx) {
    png_ = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning, nullptr, cached_malloc,
                                    cached_free);
    if (png_ != nullptr) info_ = png_create_info_struct(png_);
    if (png_ == nullptr || info_ == nullptr) throw Error("out of memory creating a PNG reader", ErrorKind::nomem);
    png_set_read_fn(png_, &ctx, read_bytes);
    // A declared size beyond what we accept is refused before libpng allocates anything for it.
    png_set_user_limits(png_, 1u << 20, 1u << 20);
    png_set_chunk_malloc_max(png_, 8u << 20);
  }
  ~Reader() { png_destroy_read_struct(&png_, &info_, nullptr); }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

class Writer {
 public:
  explicit Writer(Context& ctx) {
    png_ = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &ctx, on_error, on_warning, nullptr, cached_malloc,
                                     cached_free);
    if (png_ != nullptr) info_ = png_create_info_struct(png_);
    if (png_ == nullptr || info_ == nullptr) throw Error("out of memory creating a PNG writer", ErrorKind::nomem);
    png_set_write_fn(png_, &ctx, write_bytes, flush_nothing);
  }
  ~Writer() { png_destroy_write_struct(&png_, &info_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;
  png_structp png() const { return png_; }
  png_infop info() const { return info_; }

 private:
  png_structp png_ = nullptr;
  png_infop info_ = nullptr;
};

// Runs body under setjmp. body must only call libpng with plain values prepared by the caller: a longjmp
// out of it skips destructors, so it owns nothing.
template <typename Body>
bool run_guarded(png_structp png, Body&& body) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  body();
  return true;
}

// Sets the transforms that turn any PNG into 8-bit gray, gray+alpha, RGB or RGBA; returns the final shape.
Shape read_header(const Reader& r, Context& ctx, const std::string& what) {
  std::uint32_t width = 0;
  std::uint32_t height = 0;
  int channels = 0;
  const bool ok = run_guarded(r.png(), [&] {
    png_read_info(r.png(), r.info());
    const png_byte type = png_get_color_type(r.png(), r.info());
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r.png());
    if (type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(r.png(), r.info()) < 8) {
      png_set_expand_gray_1_2_4_to_8(r.png());
    }
    // Transparency of a palette becomes an alpha channel; elsewhere tRNS is dropped (the shape keeps its
    // channel count).
    if (type == PNG_COLOR_TYPE_PALETTE && png_get_valid(r.png(), r.info(), PNG_INFO_tRNS) != 0) {
      png_set_tRNS_to_alpha(r.png());
    }
    // 16 bits become 8 by their high byte, as Pillow reads 16-bit RGB (its "RGB;16B" unpacker), not rounded
    // (png_set_scale_16), so a 16-bit PNG gives the bytes Pillow gives.
    if (png_get_bit_depth(r.png(), r.info()) == 16) png_set_strip_16(r.png());
    png_set_interlace_handling(r.png());
    png_read_update_info(r.png(), r.info());
    width = png_get_image_width(r.png(), r.info());
    height = png_get_image_height(r.png(), r.info());
    channels = png_get_channels(r.png(), r.info());
  });
  if (!ok) throw Error(what + ": not a readable PNG (" + ctx.message + ")", ErrorKind::corrupt);
  return make_shape(height, width, static_cast<std::uint64_t>(channels), what);
}

}  // namespace

void png_check_pixels(std::size_t size, const Shape& shape, const std::string& what) {
  if (size != shape.bytes()) {
    throw Error(what + ": pixels are " + std::to_string(size) + " bytes; expected " + std::to_string(shape.bytes()) +
                    " for shape " + shape.str(),
                ErrorKind::mismatch);
  }
}

void png_encode(std::span<const std::uint8_t> pixels, const Shape& shape, int level, std::vector<std::uint8_t>& out,
                const std::string& what) {
  png_check_pixels(pixels.size(), shape, what);
  if (level < 0 || level > 9) {
    throw Error(what + ": compression level " + std::to_string(level) + " is out of range; expected 0 to 9",
                ErrorKind::mismatch);
  }
  out.clear();
  Context ctx;
  ctx.output = &out;
  const Writer w(ctx);
  const std::size_t stride = std::size_t{shape.width} * shape.channels;
  const bool ok = run_guarded(w.png(), [&] {
    png_set_IHDR(w.png(), w.info(), shape.width, shape.height, 8, png_colour_type(shape.channels), PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(w.png(), level);
    png_write_info(w.png(), w.info());
    for (std::uint32_t y = 0; y < shape.height; ++y) {
      png_write_row(w.png(), const_cast<png_bytep>(pixels.data() + y * stride));
    }
    png_write_end(w.png(), nullptr);
  });
  if (ctx.failure) std::rethrow_exception(ctx.failure);
  if (!ok) throw Error(what + ": PNG encoding failed (" + ctx.message + ")");
}

Shape png_peek_shape(std::span<const std::uint8_t> png, const std::string& what) {
  Context ctx;
  ctx.input = png;
  const Reader r(ctx);
  return read_header(r, ctx, what);
}

Shape png_decode(std::span<const std::uint8_t> png, std::vector<std::uint8_t>& out, const std::string& what) {
  Context ctx;
  ctx.input = png;
  const Reader r(ctx);
  const Shape shape = read_header(r, ctx, what);
  out.resize(shape.bytes());
  std::vector<png_bytep> rows(shape.height);
  const std::size_t stride = std::size_t{shape.width} * shape.channels;
  for (std::uint32_t y = 0; y < shape.height; ++y) rows[y] = out.data() + y * stride;
  const bool ok = run_guarded(r.png(), [&] {
    png_read_image(r.png(), rows.data());
    png_read_end(r.png(), nullptr);
  });
  if (!ok) throw Error(what + ": corrupt PNG (" + ctx.message + ")", ErrorKind::corrupt);
  return shape;
}

}  // namespace imgstore
