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
  // Reads the images of one batch of ids (each id once, as `id IN (...)` does; missing ids skipped).
  virtual Digest read_batch(std::span<const std::int64_t> ids) = 0;
};

// The random batches of sql/random_batch.sql, drawn the same way: a linear congruential generator
// (x' = (1103515245 x + 12345) mod 2^31, id = x mod n) from `seed`; each batch sorted, an id drawn twice in
// one batch kept once. `batches` 0: n / batch, at least one (the script's default).
std::vector<std::vector<std::int64_t>> random_batches(std::int64_t n, std::int64_t batch, std::int64_t batches = 0,
                                                      std::int64_t seed = 1);
// Digest of every batch read by `store`, added up (as the script's one statement adds them up).
Digest read_batches(Store& store, const std::vector<std::vector<std::int64_t>>& batches);

// backend: "lmdb", "hdf5", "png_dir", or "sqlite": a native SQLite table (id INTEGER PRIMARY KEY, label,
// pixels) in a database file at `path`, through the SQLite C API, the baseline a SQLite user already has.
// `layout` gives the image shape (its rows are not used).
std::unique_ptr<Store> create(const std::string& backend, const std::string& path, const Images& layout);
std::unique_ptr<Store> open(const std::string& backend, const std::string& path, const Images& layout);

// png_dir only: the raw libpng loop writing <id>.png and labels.csv into `dir` (created), single-threaded,
// with the final syncfs (what Store::write does) or without it.
void write_png_files(const std::string& dir, const Images& images, bool sync);

}  // namespace raw
