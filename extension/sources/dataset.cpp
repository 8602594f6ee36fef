#include "dataset.hpp"

#include <filesystem>
#include <functional>

#include "cifar10_reader.hpp"
#include "idx_reader.hpp"
#include "synthetic.hpp"

namespace imgstore {

namespace {

using Opener = std::function<std::unique_ptr<Cursor>()>;

// Yields n rows with ids 0..n-1 from a source reopened every `base` rows (or when it ends).
class Cycling final : public Cursor {
 public:
  Cycling(Opener open, std::int64_t base, std::int64_t n) : open_(std::move(open)), base_(base), n_(n) {
    if (n < 0) throw Error("dataset(): n " + std::to_string(n) + " is negative; expected n >= 0");
    rows_ = open_();
    if (rows_->at_end() && n_ > 0) throw Error("dataset(): the source is empty");
  }
  bool at_end() const override { return id_ >= n_; }
  void next() override {
    ++id_;
    ++in_pass_;
    rows_->next();
    if (id_ < n_ && (rows_->at_end() || in_pass_ == base_)) {
      rows_ = open_();
      in_pass_ = 0;
    }
  }
  std::int64_t id() const override { return id_; }
  std::int64_t label() override { return rows_->label(); }
  std::span<const std::uint8_t> pixels() override { return rows_->pixels(); }

 private:
  Opener open_;
  const std::int64_t base_;
  const std::int64_t n_;
  std::unique_ptr<Cursor> rows_;
  std::int64_t id_ = 0;
  std::int64_t in_pass_ = 0;
};

Opener opener(const std::string& name) {
  if (name == "fashion-mnist") {
    const std::string dir = fashion_mnist_dir;
    return [dir] { return open_idx(dir + "train-images-idx3-ubyte.gz", dir + "train-labels-idx1-ubyte.gz"); };
  }
  if (name == "smooth" || name == "noise") {
    return [name] {
      SyntheticOptions o;
      o.n = dataset_base;
      o.seed = 1;
      o.kind = name;
      return open_synthetic(o);
    };
  }
  std::error_code ec;
  if (std::filesystem::is_directory(name, ec)) {
    return [name] { return open_cifar(CifarOptions{name, 0, "train", "cifar10"}); };
  }
  throw Error("dataset(): '" + name + "' is not a data set; expected 'fashion-mnist', 'smooth', 'noise' or a "
              "cifar-10-batches-bin directory");
}

}  // namespace

std::unique_ptr<Cursor> open_dataset(const std::string& name, std::int64_t n) {
  return std::make_unique<Cycling>(opener(name), dataset_base, n);
}

Shape dataset_shape(const std::string& name) {
  if (name == "fashion-mnist") return idx_shape(std::string(fashion_mnist_dir) + "train-images-idx3-ubyte.gz");
  opener(name);  // validates the name
  return Shape{32, 32, 3};
}

}  // namespace imgstore
