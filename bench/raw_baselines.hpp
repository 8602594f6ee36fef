// The raw C APIs (liblmdb, libhdf5, libpng) doing the experiments' work without SQLite or imgstore's
// code, in the same on-disk layouts, so every report can show the SQL path as a ratio to its baseline.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace raw {

struct Images {
  std::uint32_t height = 0, width = 0, channels = 0;
  std::vector<std::int64_t> ids;
  std::vector<std::int64_t> labels;
  std::vector<std::uint8_t> pixels;  // n images, HWC, back to back
  std::size_t n() const { return ids.size(); }
  std::size_t bytes() const { return std::size_t{height} * width * channels; }
  std::span<const std::uint8_t> image(std::size_t i) const { return {pixels.data() + i * bytes(), bytes()}; }
};

// A read's result: the image_digest() of what was read (count and sum), to check against the SQL path.
struct Digest {
  std::uint64_t count = 0;
  std::uint64_t sum = 0;
  std::string text() const;
};

// A store opened or created through the raw C API, in the same layout as the matching imgstore backend.
// Opening (or creating) is not part of what the experiments time, as CREATE VIRTUAL TABLE is not.
class Store {
 public:
  virtual ~Store() = default;
  // Writes all images in one transaction (ids ascending), durably (fsync), as one INSERT ... SELECT does.
  virtual void write(const Images& images) = 0;
  // Reads every image, or one by id, and digests what it read.
  virtual Digest read_all() = 0;
  virtual Digest read_one(std::int64_t id) = 0;
};

// `layout` gives the image shape (its rows are not used).
std::unique_ptr<Store> create(const std::string& backend, const std::string& path, const Images& layout);
std::unique_ptr<Store> open(const std::string& backend, const std::string& path, const Images& layout);

// png_dir only: the raw libpng loop writing <id>.png and labels.csv into `dir` (created), single-threaded,
// with the final syncfs (what Store::write does) or without it.
void write_png_files(const std::string& dir, const Images& images, bool sync);

}  // namespace raw
