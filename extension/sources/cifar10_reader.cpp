#include "cifar10_reader.hpp"

#include <algorithm>
#include <filesystem>
#include <limits>

#include "input_file.hpp"

namespace imgstore {

namespace {

namespace fs = std::filesystem;

std::vector<std::string> batch_files(const CifarOptions& options) {
  const fs::path root(options.path);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {options.path};
  if (options.split != "train" && options.split != "test" && options.split != "all") {
    throw Error("cifar10(): split '" + options.split + "' is not valid; expected 'train', 'test' or 'all'");
  }
  std::vector<std::string> train;
  std::string test;
  const std::string test_name = options.format == "cifar100" ? "test.bin" : "test_batch.bin";
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    if (options.format == "cifar100" ? name == "train.bin" : (name.rfind("data_batch_", 0) == 0 && name.ends_with(".bin"))) {
      train.push_back(entry.path().string());
    }
    if (name == test_name) test = entry.path().string();
  }
  // data_batch_1 .. data_batch_5: sorting by name is numeric order for single digits; sort by length first
  // so that data_batch_10 would follow data_batch_9.
  std::sort(train.begin(), train.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  std::vector<std::string> files;
  if (options.split != "test") files = train;
  if (options.split != "train" && !test.empty()) files.push_back(test);
  if (files.empty()) {
    throw Error("cifar10(): directory '" + options.path + "' has no " +
                    (options.split == "test" ? test_name : std::string("data_batch_*.bin")) + " files",
                ErrorKind::cantopen);
  }
  return files;
}

class CifarCursor final : public Cursor {
 public:
  explicit CifarCursor(const CifarOptions& options)
      : files_(batch_files(options)), label_bytes_(options.format == "cifar100" ? 2 : 1),
        max_label_(options.format == "cifar100" ? 99 : 9), id_offset_(options.id_offset), next_id_(options.id_offset) {
    if (options.format != "cifar10" && options.format != "cifar100") {
      throw Error("cifar10(): format '" + options.format + "' is not valid; expected 'cifar10' or 'cifar100'");
    }
    if (options.id_offset < 0) {
      throw Error("cifar10(): id_offset " + std::to_string(options.id_offset) + " is negative; expected >= 0");
    }
    next();
  }

  bool at_end() const override { return at_end_; }
  std::int64_t id() const override { return id_; }
  std::int64_t label() override { return record_[label_bytes_ - 1]; }
  std::optional<Shape> row_shape() override { return Shape{32, 32, 3}; }
  std::span<const std::uint8_t> pixels() override {
    if (!converted_) {
      // Planes R, G, B of 1,024 bytes each -> interleaved HWC.
      const std::uint8_t* planes = record_.data() + label_bytes_;
      for (std::size_t i = 0; i < 1024; ++i) {
        hwc_[3 * i] = planes[i];
        hwc_[3 * i + 1] = planes[1024 + i];
        hwc_[3 * i + 2] = planes[2048 + i];
      }
      converted_ = true;
    }
    return hwc_;
  }

  void next() override {
    const std::size_t record_bytes = label_bytes_ + cifar_pixels;
    while (true) {
      if (!file_) {
        if (next_file_ == files_.size()) {
          at_end_ = true;
          return;
        }
        file_ = std::make_unique<InputFile>(files_[next_file_++]);
        if (const auto size = file_->plain_size(); size && *size % record_bytes != 0) {
          throw Error("cifar10(): '" + file_->path() + "' is " + std::to_string(*size) + " bytes, not a multiple of the " +
                          std::to_string(record_bytes) + "-byte record; expected a CIFAR binary batch",
                      ErrorKind::corrupt);
        }
        record_index_ = 0;
      }
      const auto record = file_->read(record_bytes, "record " + std::to_string(record_index_));
      if (!record) {
        file_.reset();
        continue;
      }
      record_ = *record;
      if (out_of_ids_) {
        throw Error("cifar10(): id_offset " + std::to_string(id_offset_) + ": the id of record " +
                    std::to_string(record_index_) + " of '" + file_->path() + "' would pass " +
                    std::to_string(std::numeric_limits<std::int64_t>::max()) +
                    ", the largest id; expected an id_offset that leaves room for every record");
      }
      id_ = next_id_;
      // Counted without overflow: the record after the one with the largest id has no id.
      if (next_id_ == std::numeric_limits<std::int64_t>::max()) {
        out_of_ids_ = true;
      } else {
        ++next_id_;
      }
      const std::uint8_t label = record_[label_bytes_ - 1];
      if (label > max_label_ || (label_bytes_ == 2 && record_[0] > 19)) {
        throw Error("cifar10(): '" + file_->path() + "' record " + std::to_string(record_index_) + " has label " +
                        std::to_string(label) + "; expected 0 to " + std::to_string(max_label_) +
                        " (is this a CIFAR binary batch?)",
                    ErrorKind::corrupt);
      }
      ++record_index_;
      converted_ = false;
      return;
    }
  }

 private:
  const std::vector<std::string> files_;
  const std::size_t label_bytes_;
  const std::uint8_t max_label_;
  std::size_t next_file_ = 0;
  std::unique_ptr<InputFile> file_;
  std::size_t record_index_ = 0;
  std::span<const std::uint8_t> record_;
  const std::int64_t id_offset_;
  std::int64_t next_id_;     // the id of the next record, checked >= 0 before any use
  bool out_of_ids_ = false;  // the last record took INT64_MAX
  std::int64_t id_ = -1;
  bool at_end_ = false;
  bool converted_ = false;
  std::vector<std::uint8_t> hwc_ = std::vector<std::uint8_t>(cifar_pixels);
};

}  // namespace

std::unique_ptr<Cursor> open_cifar(const CifarOptions& options) { return std::make_unique<CifarCursor>(options); }

}  // namespace imgstore
