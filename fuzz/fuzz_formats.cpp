// The stores' pure on-disk formats: labels.csv, the png_dir commit record, .imgstore and .old/generation, the hdf5 rollback
// journal (IMGJRNL1, and IMGJRNL2 with checksums) and the start of an HDF5 superblock, the lmdb store's .imgstore
// and its values (format 1 and 2, and of a store of shape 'any'). Any bytes give a value or an imgstore::Error (the journal: a value or nullopt), never a crash; what
// parses must encode back to something that parses to the same.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "error.hpp"
#include "hdf5_format.hpp"
#include "hdf5_journal.hpp"
#include "lmdb_format.hpp"
#include "png_dir_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fmt = imgstore::png_dir_format;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const auto labels = fmt::parse_labels_csv(text, "f");
    if (fmt::parse_labels_csv(fmt::labels_csv(labels), "f") != labels) std::abort();
  } catch (const imgstore::Error&) {
  }
  try {
    const auto record = fmt::parse_commit_record(text, "f");
    if (fmt::parse_commit_record(fmt::encode_commit_record(record), "f") != record) std::abort();
  } catch (const imgstore::Error&) {
  }
  try {
    (void)fmt::parse_meta(text, "f");
  } catch (const imgstore::Error&) {
  }
  try {
    const auto generation = fmt::parse_generation(text, "f");
    if (fmt::parse_generation(fmt::generation_text(generation), "f") != generation) std::abort();
  } catch (const imgstore::Error&) {
  }
  if (const auto journal = imgstore::decode_journal({data, size})) {
    if (imgstore::decode_journal(imgstore::encode_journal(*journal)) != journal) std::abort();
  }
  // lmdb: a description that parses is exactly meta_text of its shape; a value decodes only at its size, and
  // what it decodes to encodes back to the same bytes when its checksum is right.
  try {
    const imgstore::Shape shape = imgstore::lmdb_format::parse_meta(text, "f");
    if (imgstore::lmdb_format::meta_text(shape) != text) std::abort();
  } catch (const imgstore::Error&) {
  }
  for (const auto v : {imgstore::lmdb_format::Version::v1, imgstore::lmdb_format::Version::v2}) {
    namespace lf = imgstore::lmdb_format;
    const std::size_t pixels = size >= lf::header_bytes(v) ? size - lf::header_bytes(v) : 0;
    const auto value = lf::decode_value(v, {data, size}, pixels);
    if (value.has_value() != (size >= lf::header_bytes(v))) std::abort();
    if (!value || (value->checksum && lf::expected_checksum(7, *value) != *value->checksum)) continue;
    std::vector<std::uint8_t> again(lf::value_bytes(v, value->pixels.size()));
    lf::encode_value(v, 7, value->label, value->pixels, again);
    if (!std::equal(again.begin(), again.end(), data, data + size)) std::abort();
  }
  // A store of shape 'any': a value decodes only when its recorded shape is sound and matches its length; a
  // value whose checksum (with the shape's term) is right encodes back to the same bytes.
  {
    namespace lf = imgstore::lmdb_format;
    const imgstore::Shape any = imgstore::Shape::any_size();
    if (const auto value = lf::decode_value(lf::Version::v2, {data, size}, any)) {
      if (value->pixels.size() != value->shape.bytes() || size != lf::value_bytes(lf::Version::v2, value->shape.bytes(), true)) {
        std::abort();
      }
      if (lf::expected_checksum(7, *value) == *value->checksum) {
        std::vector<std::uint8_t> again(size);
        lf::encode_value(lf::Version::v2, any, 7, value->label, value->shape, value->pixels, again);
        if (!std::equal(again.begin(), again.end(), data, data + size)) std::abort();
      }
    }
  }
  // Any start of a file: a version, and an end only for the latest superblocks (never past 2^64).
  const auto head = imgstore::hdf5::parse_superblock_head({data, size});
  if (head.end && head.version != 2 && head.version != 3) std::abort();
  // A store of shape 'any': any /offsets and /shapes entries (offset, dims, committed end from the bytes) give a
  // row end within [offset, end] for a sound shape, or nothing; never an overflow.
  if (size >= 28) {
    const auto u = [&](std::size_t at, int n) {
      std::uint64_t x = 0;
      for (int i = n - 1; i >= 0; --i) x = (x << 8) | data[at + static_cast<std::size_t>(i)];
      return x;
    };
    const std::uint64_t offset = u(0, 8), end = u(8, 8);
    const imgstore::hdf5::RowDims dims{static_cast<std::uint32_t>(u(16, 4)), static_cast<std::uint32_t>(u(20, 4)),
                                       static_cast<std::uint32_t>(u(24, 4))};
    const auto shape = imgstore::hdf5::shape_of(dims);
    if (shape && (shape->bytes() == 0 || shape->bytes() > imgstore::max_image_bytes)) std::abort();
    if (const auto row_end = imgstore::hdf5::row_end(offset, dims, end)) {
      if (!shape || *row_end < offset || *row_end > end || *row_end - offset != shape->bytes()) std::abort();
    }
  }
  return 0;
}
