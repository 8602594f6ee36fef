// png_dir INSERT: which file a row goes to, and the encode window of threads > 1.
//
// A new id (not committed when the transaction began, not yet written in it) is written straight to
// <id>.png, after its id is appended to .pending/new; anything else goes to .pending/<id>.<seq>.png and is
// renamed at commit (png_dir_format.hpp). With threads = 1 put() encodes and writes the row before it
// returns. With threads > 1 put() checks the row (duplicate id, pixel length) and does the bookkeeping at
// once, copies the pixels (SQLite frees them when xUpdate returns) and hands the encode to the pool; the
// calling thread writes the encoded files in put order, keeping at most window_limit_ rows in flight. The
// window is emptied wherever a statement can end or read: savepoint, release, sync (commit), and every read
// of the files (flush_writes); rollbacks discard it. A write that fails after its put() returned fails the
// call that finds it and marks the transaction broken until a rollback takes that row back out: it can
// never commit with a listed row whose file is missing.

#include <fcntl.h>
#include <unistd.h>

#include "png_codec.hpp"
#include "png_store_impl.hpp"

namespace imgstore::png_dir {

void PngStore::put(const Image& image, bool replace) {
  undo_.require_active(table_, "INSERT");
  throw_if_broken();
  const bool exists = labels_.contains(image.id);
  if (exists && !replace) {
    throw Error("table " + table_ + ": id " + std::to_string(image.id) +
                    " already exists; expected a unique id (INSERT OR REPLACE overwrites)",
                ErrorKind::constraint);
  }
  const std::string what = "table " + table_ + ": id " + std::to_string(image.id);
  const Shape& shape = shape_.any ? image.shape : shape_;
  png_check_pixels(image.pixels.size(), shape, what);
  // Committed when the transaction began: readers may be reading its file, so it is replaced by a rename.
  const bool committed = deleted_.contains(image.id) || (exists && !inserted_.contains(image.id));
  const bool direct = !committed && !direct_.contains(image.id) && !pending_.contains(image.id);
  const std::uint64_t seq = direct ? 0 : ++seq_;
  std::string path = direct ? dir_ + "/" + png_dir_format::image_name(image.id) : pending_name(image.id, seq);
  const std::size_t undo_size = undo_size_;
  if (ThreadPool* const workers = pool_.get()) {
    std::vector<std::uint8_t> pixels(image.pixels.begin(), image.pixels.end());
    auto png = workers->submit([pixels = std::move(pixels), shape, level = level_, what] {
      std::vector<std::uint8_t> out;
      png_encode(pixels, shape, level, out, what);
      return out;
    });
    window_.push_back(Outgoing{image.id, path, direct, undo_size, std::move(png)});
  } else {
    png_encode(image.pixels, shape, level_, encoded_, what);
    write_image(image.id, path, direct, encoded_);
  }
  remember(image.id, direct);
  labels_[image.id] = image.label;
  if (direct) {
    direct_.insert(image.id);
  } else {
    pending_[image.id] = seq;
  }
  deleted_.erase(image.id);
  // A committed id stays out of inserted_ even after a DELETE of it (then it is in deleted_): were it counted
  // new, its next DELETE would forget it was committed, and its next put would write over the committed file.
  if (committed) {
    full_rewrite_ = true;  // a committed row is replaced
  } else {
    inserted_.insert(image.id);
  }
  if (window_.size() > window_limit_) write_front();
}

void PngStore::write_image(std::int64_t id, const std::string& path, bool direct, std::span<const std::uint8_t> png) {
  const std::string where = "table " + table_;
  if (direct) {
    if (!journal_) journal_ = open_or_throw(journal_path(), O_WRONLY | O_CREAT | O_APPEND, where);
    const std::string line = std::to_string(id) + "\n";
    write_all(journal_.get(), {reinterpret_cast<const std::uint8_t*>(line.data()), line.size()}, journal_path(), where);
  }
  try {
    const Fd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC, where);
    write_all(fd.get(), png, path, where);
  } catch (...) {
    ::unlink(path.c_str());  // a half-written file is no one's
    throw;
  }
}

void PngStore::write_front() {
  Outgoing row = std::move(window_.front());
  window_.pop_front();
  try {
    const std::vector<std::uint8_t> png = row.png.get();
    write_image(row.id, row.path, row.direct, png);
  } catch (const Error& e) {
    discard_writes();
    broken_ = Broken{row.undo_size, e.what(), e.kind()};
    throw;
  } catch (const std::exception& e) {
    discard_writes();
    broken_ = Broken{row.undo_size, "table " + table_ + ": id " + std::to_string(row.id) + ": " + e.what(),
                     ErrorKind::generic};
    throw Error(broken_->message, broken_->kind);
  }
}

void PngStore::flush_writes() {
  while (!window_.empty()) write_front();
}

void PngStore::discard_writes() {
  for (auto& row : window_) row.png.wait();
  window_.clear();
}

void PngStore::throw_if_broken() const {
  if (broken_) {
    throw Error(broken_->message + " (an earlier row of this transaction; roll it back)", broken_->kind);
  }
}

}  // namespace imgstore::png_dir
