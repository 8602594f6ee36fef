// png_dir reads: the cursor, which decodes on demand (threads = 1) or a window of rows ahead on the pool.
//
// Decoding ahead starts at the first pixels() call, so a statement that reads only id and label never
// decodes. The window is bounded (4 rows per thread), so memory does not grow with the table. It is used only
// outside this table's own transaction: there the rows cannot change while the cursor is open (a commit by
// anyone waits for the shared lock the cursor holds), so the rows walked ahead are still the rows when their
// turn comes.

#include <unistd.h>

#include "png_codec.hpp"
#include "png_store_impl.hpp"

namespace imgstore::png_dir {

Shape read_image(const std::string& table, const std::string& path, std::int64_t id, const Shape& shape,
                 std::vector<std::uint8_t>& file_bytes, std::vector<std::uint8_t>& pixels) {
  const std::string what = "table " + table + ": '" + path + "'";
  try {
    read_whole(path, file_bytes, "table " + table);
  } catch (const Error&) {
    // Asked only now, so a row costs no extra system call.
    if (::access(path.c_str(), F_OK) != 0) {
      throw Error(what + " is missing; labels.csv lists id " + std::to_string(id), ErrorKind::corrupt);
    }
    throw;
  }
  const Shape found = png_decode(file_bytes, pixels, what);
  if (!shape.any && found != shape) {
    throw Error(what + " is a " + found.str() + " image; expected " + shape.str(), ErrorKind::mismatch);
  }
  return found;
}

PngCursor::PngCursor(PngStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids, Fd read_lock,
                     ThreadPool* pool)
    : store_(store), read_lock_(std::move(read_lock)), pool_(pool), walk_(range, std::move(ids), by_ids) {
  step();
}

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
  ahead_.pop_front();
  fill();
}

void PngCursor::fill() {
  const std::size_t limit = 4 * pool_->size();
  while (ahead_.size() < limit && !at_end_) {
    const std::int64_t id = walk_.id();
    std::string path = store_.file_of(id);
    auto pixels = pool_->submit([table = store_.table(), path = std::move(path), id, shape = store_.shape()] {
      std::vector<std::uint8_t> file_bytes;
      Decoded out;
      out.shape = read_image(table, path, id, shape, file_bytes, out.pixels);
      return out;
    });
    ahead_.push_back(Ahead{id, walk_.value(), std::move(pixels)});
    step();
  }
}

std::span<const std::uint8_t> PngCursor::pixels() {
  if (decoded_) return pixels_;
  if (pool_ != nullptr && ahead_.empty() && !at_end_) {
    // The first row whose pixels are asked for: from here on, decode ahead (this row included).
    fill();
  }
  if (ahead_.empty()) {
    shape_ = read_image(store_.table(), store_.file_of(id()), id(), store_.shape(), file_bytes_, pixels_);
  } else {
    Decoded decoded = ahead_.front().pixels.get();
    pixels_ = std::move(decoded.pixels);
    shape_ = decoded.shape;
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
