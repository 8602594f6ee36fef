#include "image_resize.hpp"

#include <algorithm>
#include <cmath>

#include "image_convert.hpp"

namespace imgstore {

namespace {

// Pillow's PRECISION_BITS for 8-bit images: 32 - 8 (the value) - 2 (headroom for filters with negative lobes).
constexpr int kPrecisionBits = 22;

double triangle(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

// The weights of each output pixel along one axis: first source index, count, and fixed-point weights (ksize
// a pixel). Pillow's precompute_coeffs and normalize_coeffs_8bpc for the bilinear filter (support 1) and a box
// of the whole image, in the same floating-point steps so that every rounding falls the same way.
struct Weights {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<std::int32_t> k;
};

Weights weights(int in_size, int out_size) {
  Weights w;
  // Pillow passes the box as floats: (double)(in1 - in0) with in0 = 0.0f, in1 = (float)in_size.
  const double scale = static_cast<double>(static_cast<float>(in_size) - 0.0f) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  w.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  w.first.resize(static_cast<std::size_t>(out_size));
  w.count.resize(static_cast<std::size_t>(out_size));
  w.k.assign(static_cast<std::size_t>(out_size) * static_cast<std::size_t>(w.ksize), 0);
  std::vector<double> k(static_cast<std::size_t>(w.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);  // C's truncation, then the clamp
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size) - xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[static_cast<std::size_t>(x)] = triangle((x + xmin - center + 0.5) * ss);
      total += k[static_cast<std::size_t>(x)];
    }
    std::int32_t* fixed = &w.k[static_cast<std::size_t>(xx) * static_cast<std::size_t>(w.ksize)];
    for (int x = 0; x < xmax; ++x) {
      const double v = total != 0.0 ? k[static_cast<std::size_t>(x)] / total : k[static_cast<std::size_t>(x)];
      fixed[x] = static_cast<std::int32_t>(v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    w.first[static_cast<std::size_t>(xx)] = xmin;
    w.count[static_cast<std::size_t>(xx)] = xmax;
  }
  return w;
}

std::uint8_t clip8(std::int32_t sum) { return static_cast<std::uint8_t>(std::clamp(sum >> kPrecisionBits, 0, 255)); }

// Horizontal pass: every row of `in` (in_width wide) to out_width, all channels of a pixel at once (the channel
// count known to the compiler). Integer sums: the order of the terms changes nothing, so this is Pillow's value.
template <std::uint32_t C>
void resample_rows(const std::uint8_t* in, std::uint32_t rows, std::uint32_t in_width, const Weights& w,
                   std::uint32_t out_width, std::uint8_t* out) {
  for (std::uint32_t y = 0; y < rows; ++y) {
    const std::uint8_t* row = in + std::size_t{y} * in_width * C;
    std::uint8_t* dst = out + std::size_t{y} * out_width * C;
    for (std::uint32_t xx = 0; xx < out_width; ++xx) {
      const std::int32_t* k = &w.k[std::size_t{xx} * static_cast<std::size_t>(w.ksize)];
      const std::uint8_t* src = row + static_cast<std::size_t>(w.first[xx]) * C;
      std::int32_t sum[C];
      for (std::uint32_t c = 0; c < C; ++c) sum[c] = 1 << (kPrecisionBits - 1);
      for (int x = 0; x < w.count[xx]; ++x) {
        for (std::uint32_t c = 0; c < C; ++c) sum[c] += src[static_cast<std::size_t>(x) * C + c] * k[x];
      }
      for (std::uint32_t c = 0; c < C; ++c) dst[std::size_t{xx} * C + c] = clip8(sum[c]);
    }
  }
}

void resample_rows(const std::uint8_t* in, std::uint32_t rows, std::uint32_t in_width, std::uint32_t channels,
                   const Weights& w, std::uint32_t out_width, std::uint8_t* out) {
  switch (channels) {
    case 1: return resample_rows<1>(in, rows, in_width, w, out_width, out);
    case 2: return resample_rows<2>(in, rows, in_width, w, out_width, out);
    case 3: return resample_rows<3>(in, rows, in_width, w, out_width, out);
    default: return resample_rows<4>(in, rows, in_width, w, out_width, out);
  }
}

// Vertical pass: in_height rows of `in` (row_bytes each) to out_height rows, a whole row of sums at a time (the
// compiler vectorises the inner loops).
void resample_columns(const std::uint8_t* in, std::size_t row_bytes, const Weights& w, std::uint32_t out_height,
                      std::uint8_t* out) {
  std::vector<std::int32_t> sum(row_bytes);
  for (std::uint32_t yy = 0; yy < out_height; ++yy) {
    const std::int32_t* k = &w.k[std::size_t{yy} * static_cast<std::size_t>(w.ksize)];
    const std::uint8_t* src = in + static_cast<std::size_t>(w.first[yy]) * row_bytes;
    std::fill(sum.begin(), sum.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < w.count[yy]; ++y) {
      const std::uint8_t* line = src + static_cast<std::size_t>(y) * row_bytes;
      const std::int32_t ky = k[y];
      for (std::size_t i = 0; i < row_bytes; ++i) sum[i] += line[i] * ky;
    }
    std::uint8_t* dst = out + yy * row_bytes;
    for (std::size_t i = 0; i < row_bytes; ++i) dst[i] = clip8(sum[i]);
  }
}

}  // namespace

void resize_bilinear(std::span<const std::uint8_t> in, const Shape& from, std::uint32_t height, std::uint32_t width,
                     std::vector<std::uint8_t>& out) {
  const std::uint32_t channels = from.channels;
  if (from.height == height && from.width == width) {
    out.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(from.bytes()));
    return;
  }
  const bool alpha = channels == 2 || channels == 4;
  std::vector<std::uint8_t> premultiplied;
  const std::uint8_t* source = in.data();
  if (alpha) {
    premultiplied.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(from.bytes()));
    premultiply_alpha(premultiplied, channels);
    source = premultiplied.data();
  }
  // Pillow resamples an axis only when its size changes.
  std::vector<std::uint8_t> across;
  std::uint32_t across_width = from.width;
  if (width != from.width) {
    across.resize(std::size_t{from.height} * width * channels);
    const Weights across_weights = weights(static_cast<int>(from.width), static_cast<int>(width));
    resample_rows(source, from.height, from.width, channels, across_weights, width, across.data());
    source = across.data();
    across_width = width;
  }
  out.resize(std::size_t{height} * width * channels);
  if (height != from.height) {
    resample_columns(source, std::size_t{across_width} * channels,
                     weights(static_cast<int>(from.height), static_cast<int>(height)), height, out.data());
  } else {
    std::copy(source, source + out.size(), out.begin());
  }
  if (alpha) unpremultiply_alpha(out, channels);
}

}  // namespace imgstore
