#include "dataset.hpp"

#include <filesystem>
#include <functional>
#include <limits>
#include <utility>

#include "cifar10_reader.hpp"
#include "idx_reader.hpp"
#include "synthetic.hpp"

namespace imgstore {

namespace {

using Opener = std::function<std::unique_ptr<Cursor>()>;

// Yields n rows with ids 0..n-1 from a source reopened every `every` rows (0: only when it ends).
class Cycling final : public Cursor {
 public:
  Cycling(Opener open, std::int64_t every, std::int64_t n) : open_(std::move(open)), every_(every), n_(n) {
    if (n < 0) throw Error("dataset(): n " + std::to_string(n) + " is negative; expected n >= 0");
    rows_ = open_();
    if (rows_->at_end() && n_ > 0) throw Error("dataset(): the source is empty");
  }
  bool at_end() const override { return id_ >= n_; }
  void next() override {
    ++id_;
    ++in_pass_;
    rows_->next();
    if (id_ < n_ && (rows_->at_end() || in_pass_ == every_)) {
      rows_ = open_();
      in_pass_ = 0;
    }
  }
  std::int64_t id() const override { return id_; }
  std::int64_t label() override { return rows_->label(); }
  std::optional<Shape> row_shape() override { return rows_->row_shape(); }
  std::span<const std::uint8_t> pixels() override { return rows_->pixels(); }

 private:
  Opener open_;
  const std::int64_t every_;
  const std::int64_t n_;
  std::unique_ptr<Cursor> rows_;
  std::int64_t id_ = 0;
  std::int64_t in_pass_ = 0;
};

// The IDX training files of a directory, gzipped or plain; empty when it has none.
std::pair<std::string, std::string> idx_files(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* suffix : {".gz", ""}) {
    const fs::path images = fs::path(dir) / (std::string("train-images-idx3-ubyte") + suffix);
    const fs::path labels = fs::path(dir) / (std::string("train-labels-idx1-ubyte") + suffix);
    if (fs::is_regular_file(images, ec) && fs::is_regular_file(labels, ec)) return {images.string(), labels.string()};
  }
  return {};
}

Opener opener(const std::string& source) {
  if (source == "smooth" || source == "noise") {
    return [source] {
      SyntheticOptions o;
      o.n = std::numeric_limits<std::int64_t>::max();  // endless; dataset() stops at n
      o.seed = 1;
      o.kind = source;
      return open_synthetic(o);
    };
  }
  std::error_code ec;
  if (std::filesystem::is_directory(source, ec)) {
    const auto files = idx_files(source);  // a pair, not a structured binding: clang 14 cannot capture those
    if (!files.first.empty()) return [files] { return open_idx(files.first, files.second); };
    return [source] { return open_cifar(CifarOptions{source, 0, "train", "cifar10"}); };
  }
  throw Error("dataset(): '" + source + "' is not a data set; expected a directory of IDX files "
              "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz), a cifar-10-batches-bin directory, "
              "'smooth' or 'noise'");
}

}  // namespace

std::unique_ptr<Cursor> open_dataset(const std::string& source, std::int64_t n, std::int64_t every) {
  if (every < 0) throw Error("dataset(): every " + std::to_string(every) + " is negative; expected 0 (start over when "
                             "the source ends) or a row count");
  return std::make_unique<Cycling>(opener(source), every, n);
}

Shape dataset_shape(const std::string& source) {
  std::error_code ec;
  if (std::filesystem::is_directory(source, ec)) {
    const auto images = idx_files(source).first;
    if (!images.empty()) return idx_shape(images);
  }
  opener(source);  // validates the source
  return Shape{32, 32, 3};
}

}  // namespace imgstore
