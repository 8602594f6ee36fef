#include "idx_reader.hpp"

#include "input_file.hpp"

namespace imgstore {

namespace {

std::uint32_t big_endian(const std::uint8_t* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

struct Header {
  std::uint64_t count = 0;
  Shape shape;  // images only
};

// Reads and checks the header: magic, element type (unsigned byte), number of dimensions.
Header read_header(InputFile& file, int dims) {
  const std::string what = "idx(): '" + file.path() + "'";
  const auto head = file.read(4, "the IDX header");
  if (!head) throw Error(what + " is empty; expected an IDX file", ErrorKind::corrupt);
  const std::uint8_t* m = head->data();
  if (m[0] != 0 || m[1] != 0) {
    throw Error(what + " has magic " + std::to_string(big_endian(m)) + "; expected an IDX file (0x0000080" +
                    std::to_string(dims) + ")",
                ErrorKind::corrupt);
  }
  if (m[2] != 0x08) {
    throw Error(what + " holds IDX element type " + std::to_string(m[2]) + "; expected 8 (unsigned byte)",
                ErrorKind::corrupt);
  }
  if (m[3] != dims) {
    throw Error(what + " has " + std::to_string(m[3]) + " dimensions; expected " + std::to_string(dims) +
                    (dims == 3 ? " (images: count, rows, cols)" : " (labels: count)"),
                ErrorKind::corrupt);
  }
  const auto sizes = file.read(4 * static_cast<std::size_t>(dims), "the IDX dimensions");
  if (!sizes) throw Error(what + " ends inside its header", ErrorKind::corrupt);
  Header h;
  h.count = big_endian(sizes->data());
  if (dims == 3) h.shape = make_shape(big_endian(sizes->data() + 4), big_endian(sizes->data() + 8), 1, what);
  const std::uint64_t record = dims == 3 ? h.shape.bytes() : 1;
  // A plain file must hold exactly what its header declares: checked before reading anything else.
  if (const auto size = file.plain_size()) {
    const std::uint64_t header_bytes = 4 + 4 * static_cast<std::uint64_t>(dims);
    const std::uint64_t expected = header_bytes + h.count * record;  // count < 2^32, record < 2^27: no overflow
    if (*size != expected) {
      throw Error(what + " is " + std::to_string(*size) + " bytes but its header declares " + std::to_string(h.count) +
                      " records of " + std::to_string(record) + " bytes (" + std::to_string(expected) +
                      " bytes); the file is " + (*size < expected ? "truncated" : "oversized"),
                  ErrorKind::corrupt);
    }
  }
  return h;
}

class IdxCursor final : public Cursor {
 public:
  IdxCursor(const std::string& images, const std::string& labels) : images_(images), labels_(labels) {
    const Header ih = read_header(images_, 3);
    const Header lh = read_header(labels_, 1);
    if (ih.count != lh.count) {
      throw Error("idx(): '" + images + "' declares " + std::to_string(ih.count) + " images but '" + labels +
                      "' declares " + std::to_string(lh.count) + " labels; expected the same count",
                  ErrorKind::corrupt);
    }
    count_ = ih.count;
    shape_ = ih.shape;
    next();
  }

  bool at_end() const override { return at_end_; }
  std::int64_t id() const override { return id_; }
  std::int64_t label() override { return label_; }
  std::span<const std::uint8_t> pixels() override { return pixels_; }
  std::optional<Shape> row_shape() override { return shape_; }

  void next() override {
    if (static_cast<std::uint64_t>(id_ + 1) == count_) {
      // Trailing bytes in a gzip stream are as wrong as in a plain file.
      if (!images_.at_end() || !labels_.at_end()) {
        throw Error("idx(): '" + (images_.at_end() ? labels_.path() : images_.path()) + "' has data after the " +
                        std::to_string(count_) + " records its header declares (oversized)",
                    ErrorKind::corrupt);
      }
      at_end_ = true;
      return;
    }
    ++id_;
    const std::string what = "image " + std::to_string(id_) + " of " + std::to_string(count_);
    const auto pixels = images_.read(shape_.bytes(), what);
    const auto label = labels_.read(1, "label " + std::to_string(id_) + " of " + std::to_string(count_));
    if (!pixels || !label) {
      throw Error("idx(): '" + (pixels ? labels_.path() : images_.path()) + "' is truncated: it ends after " +
                      std::to_string(id_) + " of the " + std::to_string(count_) + " records its header declares",
                  ErrorKind::corrupt);
    }
    pixels_ = *pixels;
    label_ = (*label)[0];
  }

 private:
  InputFile images_;
  InputFile labels_;
  std::uint64_t count_ = 0;
  Shape shape_;
  std::int64_t id_ = -1;
  std::int64_t label_ = 0;
  std::span<const std::uint8_t> pixels_;
  bool at_end_ = false;
};

}  // namespace

std::unique_ptr<Cursor> open_idx(const std::string& images, const std::string& labels) {
  return std::make_unique<IdxCursor>(images, labels);
}

Shape idx_shape(const std::string& images) {
  InputFile file(images, 4096);
  return read_header(file, 3).shape;
}

}  // namespace imgstore
