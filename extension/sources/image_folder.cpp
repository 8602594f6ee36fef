#include "image_folder.hpp"

#include <algorithm>
#include <deque>
#include <exception>
#include <future>
#include <vector>

#include "folder_walk.hpp"
#include "image_file.hpp"
#include "thread_pool.hpp"

namespace imgstore {

namespace {

constexpr const char* kFn = "image_folder";

struct Entry {
  std::int64_t id = 0;
  std::int64_t label = 0;
  std::string path;
};

// The rows in ImageFolder's order: classes in turn, each class's files as ClassFiles walks them.
class FolderRows {
 public:
  explicit FolderRows(const std::string& root) : root_(expand_user(root)), classes_(folder_classes(root_, kFn)) {}

  const std::vector<std::string>& classes() const { return classes_; }

  std::optional<Entry> next() {
    for (;;) {
      if (!files_) {
        if (class_ >= classes_.size()) return std::nullopt;
        files_.emplace(path_join(root_, classes_[class_]), kFn);
      }
      if (auto path = files_->next()) return Entry{next_id_++, static_cast<std::int64_t>(class_), std::move(*path)};
      files_.reset();  // an empty class keeps its label and yields no row
      ++class_;
    }
  }

 private:
  const std::string root_;
  const std::vector<std::string> classes_;
  std::size_t class_ = 0;
  std::optional<ClassFiles> files_;
  std::int64_t next_id_ = 0;
};

// Decoding on the calling thread (threads = 1) or a window of rows ahead on the pool, as png_dir's cursor
// does: the window starts at the first row whose pixels or shape are asked for (so SELECT path, label never
// reads an image file), holds at most 4 tasks per worker (memory does not grow with the folder), and hands rows
// out in order, so the bytes are those of threads = 1. A file that fails fails its own row, when that row's
// pixels are asked for. A task reads a few consecutive files, as many as make about 64 KiB of pixels: a small
// image decodes in 10-20 us, about what handing one task to a worker and its result back costs.
class ImageFolderCursor final : public ImageFolderRows {
 public:
  explicit ImageFolderCursor(const ImageFolderOptions& options)
      : shape_(options.shape), rows_(options.root), pool_(options.threads) {
    walked_ = rows_.next();
  }

  bool at_end() const override { return ahead_.empty() && !walked_; }
  std::int64_t id() const override { return current().id; }
  std::int64_t label() override { return current().label; }
  const std::string& path() const override { return current().path; }
  const std::string& class_name() const override {
    return rows_.classes()[static_cast<std::size_t>(current().label)];
  }

  void next() override {
    loaded_.reset();
    if (ahead_.empty()) {
      walked_ = rows_.next();
      return;
    }
    ahead_.pop_front();
    fill();
  }

  std::span<const std::uint8_t> pixels() override { return load(true).pixels; }

  std::optional<Shape> row_shape() override {
    if (shape_) return shape_;
    return load(false).shape;
  }

 private:
  // One task's reads: each file's image or its error, in order.
  struct Read {
    std::optional<ImageFile> image;
    std::exception_ptr error;
  };
  struct Batch {
    std::future<std::vector<Read>> reads;
    std::vector<Read> done;  // reads.get(), once the first of its rows is asked for
    bool got = false;
  };
  struct Ahead {
    Entry entry;
    std::shared_ptr<Batch> batch;
    std::size_t index = 0;  // this row's read in the batch
  };
  static constexpr std::size_t kBatchPixels = std::size_t{64} << 10;
  static constexpr std::size_t kMaxBatch = 16;

  const Entry& current() const { return ahead_.empty() ? *walked_ : ahead_.front().entry; }

  const ImageFile& load(bool want_pixels) {
    if (loaded_ && (loaded_->has_pixels || !want_pixels)) return *loaded_;
    ThreadPool* const pool = pool_.get();
    if (pool != nullptr && ahead_.empty()) {
      // The first row asked for: from here on, read ahead (this row included), as much as was asked.
      decode_ahead_ = want_pixels;
      fill();
    }
    // Pixels asked for while the window reads shapes only: the rows already in it are decoded here, the
    // rows submitted from now on by the workers.
    if (want_pixels) decode_ahead_ = true;
    if (!ahead_.empty()) {
      Batch& batch = *ahead_.front().batch;
      if (!batch.got) {
        batch.done = batch.reads.get();
        batch.got = true;
      }
      Read& read = batch.done[ahead_.front().index];
      if (read.error) std::rethrow_exception(read.error);
      if (read.image) {
        loaded_ = std::move(*read.image);
        read.image.reset();
        if (loaded_->has_pixels) {
          const std::size_t bytes = std::max<std::size_t>(loaded_->pixels.size(), 1);
          batch_ = std::clamp<std::size_t>(kBatchPixels / bytes, 1, kMaxBatch);
        }
        if (loaded_->has_pixels || !want_pixels) return *loaded_;
      }
    }
    loaded_ = read_image_file(current().path, shape_, want_pixels, kFn);
    return *loaded_;
  }

  // Tops the window up with tasks of batch_ rows each. A task's rows join the window once it is submitted, so a
  // failed submission (out of memory) leaves no row without its read.
  void fill() {
    ThreadPool* const pool = pool_.get();
    const std::size_t limit = 4 * pool->size() * batch_;
    while (ahead_.size() + batch_ <= limit && walked_) {
      std::vector<Entry> entries;
      std::vector<std::string> paths;
      for (std::size_t i = 0; i < batch_ && walked_; ++i) {
        paths.push_back(walked_->path);
        entries.push_back(std::move(*walked_));
        walked_ = rows_.next();
      }
      auto batch = std::make_shared<Batch>();
      batch->reads = pool->submit([paths = std::move(paths), shape = shape_, want_pixels = decode_ahead_] {
        std::vector<Read> reads(paths.size());
        for (std::size_t i = 0; i < paths.size(); ++i) {
          try {
            reads[i].image = read_image_file(paths[i], shape, want_pixels, kFn);
          } catch (...) {
            reads[i].error = std::current_exception();
          }
        }
        return reads;
      });
      for (std::size_t i = 0; i < entries.size(); ++i) ahead_.push_back(Ahead{std::move(entries[i]), batch, i});
    }
  }

  const std::optional<Shape> shape_;
  FolderRows rows_;
  std::optional<Entry> walked_;  // the next row of the walk not yet in the window (the current one when none)
  LazyPool pool_;                // declared before the window, so it outlives it: its workers finish those reads
  std::deque<Ahead> ahead_;      // rows being read, the current one first (empty when not reading ahead)
  bool decode_ahead_ = false;    // the window decodes pixels, not only shapes
  std::size_t batch_ = 1;        // rows a task reads: about kBatchPixels of the last image's size
  std::optional<ImageFile> loaded_;  // the current row's image, once asked for
};

}  // namespace

std::unique_ptr<ImageFolderRows> open_image_folder(const ImageFolderOptions& options) {
  return std::make_unique<ImageFolderCursor>(options);
}

}  // namespace imgstore
