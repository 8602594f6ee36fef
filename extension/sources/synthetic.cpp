#include "synthetic.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>
#include <vector>

namespace imgstore {

namespace {

// splitmix64: a documented, tiny, high-quality 64-bit mixer.
std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::uint64_t image_seed(const SyntheticOptions& o, std::int64_t id) {
  return mix(o.seed * 0x2545f4914f6cdd1dull ^ mix(static_cast<std::uint64_t>(id)));
}

// Triangle wave of period 512 in [-128, 128].
int triangle(std::int64_t t) {
  const int m = static_cast<int>(((t % 512) + 512) % 512);
  return (m < 256 ? m : 512 - m) - 128;
}

void noise(std::uint64_t state, std::span<std::uint8_t> out) {
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    state = mix(state);
    for (int k = 0; k < 8; ++k) out[i + k] = static_cast<std::uint8_t>(state >> (8 * k));  // any endianness
  }
  state = mix(state);
  for (; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(state >> (8 * (i % 8)));
}

void smooth(std::uint64_t state, const Shape& shape, std::span<std::uint8_t> out) {
  struct Channel {
    int base, gx, gy, ax, ay, fx, fy, px, py;
  };
  Channel ch[4];
  for (std::uint32_t c = 0; c < shape.channels; ++c) {
    const auto r = [&](int lo, int hi) {
      state = mix(state);
      return lo + static_cast<int>(state % static_cast<std::uint64_t>(hi - lo + 1));
    };
    ch[c] = Channel{r(40, 215), r(-48, 48), r(-48, 48), r(0, 60), r(0, 60), r(4, 40), r(4, 40), r(0, 511), r(0, 511)};
  }
  // Each term depends on x or on y alone, so a row's terms are computed once: the same values as evaluating the
  // whole expression per pixel, without five divisions a byte (the generator was most of a bulk load's time).
  const auto w = static_cast<int>(shape.width);
  const auto h = static_cast<int>(shape.height);
  const std::size_t row = static_cast<std::size_t>(shape.width) * shape.channels;
  std::vector<std::int16_t> across(row);  // base + the x terms, per (x, c): within +-1,000
  for (int x = 0; x < w; ++x) {
    for (std::uint32_t c = 0; c < shape.channels; ++c) {
      const Channel& k = ch[c];
      // Gradients scaled to the image size, so every shape spans a similar range.
      across[static_cast<std::size_t>(x) * shape.channels + c] =
          static_cast<std::int16_t>(k.base + k.gx * x * 32 / w / 16 + k.ax * triangle(k.fx * x + k.px) / 256);
    }
  }
  // Sensor noise: -1..2 a byte, from the bytes of a state that moves on at each pixel whose first byte is at a
  // multiple of 8, so every lcm(8, channels) bytes; byte i takes bits 8 * (i % 8) of it. Made for the whole
  // image first (8 bytes at a time), then added to each row's across and down terms: loops the compiler
  // vectorizes, the same bytes as the pixel by pixel loop this replaced.
  const std::size_t channels = shape.channels;
  const std::size_t period = std::lcm<std::size_t>(8, channels);
  const std::size_t total = out.size();
  std::vector<std::uint8_t> noise((total + 7) / 8 * 8);
  std::uint64_t noise_state = mix(state);
  for (std::size_t i = 0, left = 0; i < total; i += 8, left -= 8) {
    if (left == 0) {
      noise_state = mix(noise_state);
      left = period;
    }
    const std::uint64_t bits = noise_state & 0x0303030303030303ull;
    if constexpr (std::endian::native == std::endian::little) {
      std::memcpy(noise.data() + i, &bits, 8);
    } else {
      for (std::size_t k = 0; k < 8; ++k) noise[i + k] = static_cast<std::uint8_t>(bits >> (8 * k));
    }
  }
  // The down terms of a row repeated per pixel: its first pixel's, then doubled by copies (no per-byte loop
  // over channels).
  std::vector<std::int16_t> down(row);
  for (int y = 0; y < h; ++y) {
    for (std::size_t c = 0; c < channels; ++c) {
      const Channel& k = ch[c];
      down[c] = static_cast<std::int16_t>(k.gy * y * 32 / h / 16 + k.ay * triangle(k.fy * y + k.py) / 256);
    }
    for (std::size_t done = channels; done < row; done *= 2) {
      std::memcpy(down.data() + done, down.data(), std::min(done, row - done) * sizeof(std::int16_t));
    }
    const std::size_t first = static_cast<std::size_t>(y) * row;
    const std::uint8_t* n = noise.data() + first;
    std::uint8_t* o = out.data() + first;
    for (std::size_t j = 0; j < row; ++j) {
      const auto v = static_cast<std::int16_t>(across[j] + down[j] + n[j] - 1);
      o[j] = static_cast<std::uint8_t>(std::clamp<std::int16_t>(v, 0, 255));
    }
  }
}

class SyntheticCursor final : public Cursor {
 public:
  explicit SyntheticCursor(const SyntheticOptions& options) : options_(options), pixels_(options.shape.bytes()) {
    if (options.n < 0) throw Error("synthetic(): n " + std::to_string(options.n) + " is negative; expected n >= 0");
    if (options.kind != "noise" && options.kind != "smooth") {
      throw Error("synthetic(): kind '" + options.kind + "' is not valid; expected 'noise' or 'smooth'");
    }
    if (options.labels < 1) throw Error("synthetic(): labels must be at least 1");
  }
  bool at_end() const override { return id_ >= options_.n; }
  void next() override {
    ++id_;
    generated_ = false;
  }
  std::int64_t id() const override { return id_; }
  std::int64_t label() override { return synthetic_label(options_, id_); }
  std::optional<Shape> row_shape() override { return options_.shape; }
  std::span<const std::uint8_t> pixels() override {
    if (!generated_) synthetic_image(options_, id_, pixels_);
    generated_ = true;
    return pixels_;
  }

 private:
  const SyntheticOptions options_;
  std::int64_t id_ = 0;
  bool generated_ = false;
  std::vector<std::uint8_t> pixels_;
};

}  // namespace

void synthetic_image(const SyntheticOptions& options, std::int64_t id, std::span<std::uint8_t> out) {
  const std::uint64_t state = image_seed(options, id);
  if (options.kind == "smooth") {
    smooth(state, options.shape, out);
  } else {
    noise(state, out);
  }
}

std::int64_t synthetic_label(const SyntheticOptions& options, std::int64_t id) {
  return static_cast<std::int64_t>(mix(image_seed(options, id) ^ 0x5bd1e995u) % static_cast<std::uint64_t>(options.labels));
}

std::unique_ptr<Cursor> open_synthetic(const SyntheticOptions& options) {
  return std::make_unique<SyntheticCursor>(options);
}

}  // namespace imgstore
