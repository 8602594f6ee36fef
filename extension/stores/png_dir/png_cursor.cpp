// png_dir reads: the cursor, which decodes on demand (threads = 1) or a window of rows ahead on the pool.
//
// Decoding ahead starts at the first pixels() call, so a statement that reads only id and label never
// decodes. The window is bounded (2 tasks of up to 16 rows per thread), so memory does not grow with the
// table. The rows cannot change under the cursor: it reads the labels of its generation (the store does not
// reload them under an open cursor) and each file as of that generation (png_versions.hpp), whatever commits
// meanwhile; inside the table's own transaction no other writer commits, and the cursor decodes on demand.

#include <algorithm>

#include "png_codec.hpp"
#include "png_store_impl.hpp"
#include "png_versions.hpp"

namespace imgstore::png_dir {

Shape read_image(const std::string& table, const std::string& dir, const std::string& path, std::int64_t id,
                 std::optional<std::uint64_t> as_of, const Shape& shape, std::vector<std::uint8_t>& file_bytes,
                 std::vector<std::uint8_t>& pixels) {
  const std::string where = "table " + table;
  std::string opened;
  const Fd fd = open_as_of(dir, path, id, as_of, opened, where);
  if (!fd) throw Error(where + ": '" + path + "' is missing; labels.csv lists id " + std::to_string(id), ErrorKind::corrupt);
  read_whole(fd.get(), opened, file_bytes, where);
  const std::string what = where + ": '" + opened + "'";
  const Shape found = png_decode(file_bytes, pixels, what);
  if (!shape.any && found != shape) {
    throw Error(what + " is a " + found.str() + " image; expected " + shape.str(), ErrorKind::mismatch);
  }
  return found;
}

namespace {

// Rows a decode task takes: enough that handing them over costs little beside decoding them, few enough that
// the window (2 tasks per thread) stays small for large images.
std::size_t rows_per_task(const Shape& shape) {
  if (shape.any) return 4;
  return std::clamp<std::size_t>((std::size_t{64} << 10) / std::max<std::size_t>(shape.bytes(), 1), 1, 16);
}

}  // namespace

PngCursor::PngCursor(PngStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids, Fd read_lock,
                     std::optional<std::uint64_t> as_of, ThreadPool* pool)
    : store_(store), read_lock_(std::move(read_lock)), as_of_(as_of), pool_(pool), batch_rows_(rows_per_task(store.shape())),
      walk_(range, std::move(ids), by_ids) {
  ++store_.open_cursors_;
  step();
}

PngCursor::~PngCursor() { --store_.open_cursors_; }

void PngCursor::step() {
  at_end_ = !walk_.step([&](std::int64_t id) { return store_.label_of(id); },
                        [&](std::int64_t from) { return store_.row_from(from); });
}

void PngCursor::next() {
  decoded_ = false;
  if (ahead_.empty()) {
    step();
    return;
  }
  if (++pos_ < ahead_.front().ids.size()) return;
  ahead_.pop_front();
  pos_ = 0;
  front_ready_ = false;
  front_.clear();
  fill();
}

void PngCursor::fill() {
  const std::size_t limit = 2 * pool_->size();
  while (ahead_.size() < limit && !at_end_) {
    Batch batch;
    std::vector<std::string> paths;
    while (batch.ids.size() < batch_rows_ && !at_end_) {
      batch.ids.push_back(walk_.id());
      batch.labels.push_back(walk_.value());
      paths.push_back(store_.file_of(walk_.id()));
      step();
    }
    batch.decoded = pool_->submit([table = store_.table(), dir = store_.dir(), paths = std::move(paths),
                                   ids = batch.ids, as_of = as_of_, shape = store_.shape()] {
      std::vector<Decoded> out(ids.size());
      std::vector<std::uint8_t> file_bytes;
      for (std::size_t i = 0; i < ids.size(); ++i) {
        try {
          out[i].shape = read_image(table, dir, paths[i], ids[i], as_of, shape, file_bytes, out[i].pixels);
        } catch (...) {
          out[i].error = std::current_exception();
        }
      }
      return out;
    });
    ahead_.push_back(std::move(batch));
  }
}

std::span<const std::uint8_t> PngCursor::pixels() {
  if (decoded_) return pixels_;
  if (pool_ != nullptr && ahead_.empty() && !at_end_) {
    // The first row whose pixels are asked for: from here on, decode ahead (this row included).
    fill();
  }
  if (ahead_.empty()) {
    shape_ = read_image(store_.table(), store_.dir(), store_.file_of(id()), id(), as_of_, store_.shape(), file_bytes_,
                        pixels_);
  } else {
    if (!front_ready_) {
      front_ = ahead_.front().decoded.get();
      front_ready_ = true;
    }
    Decoded& row = front_[pos_];
    if (row.error) std::rethrow_exception(row.error);
    pixels_.swap(row.pixels);
    shape_ = row.shape;
  }
  decoded_ = true;
  return pixels_;
}

// A PNG's shape is in its header; the cursor decodes the row (as pixels() would) rather than read the file twice.
std::optional<Shape> PngCursor::row_shape() {
  if (!store_.shape().any) return std::nullopt;
  pixels();
  return shape_;
}

}  // namespace imgstore::png_dir
