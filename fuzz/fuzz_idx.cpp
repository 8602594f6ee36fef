// The IDX reader on any pair of files (plain or gzip): the first byte says where the input splits into an
// images file and a labels file. Every row is read to the end.
#include "error.hpp"
#include "fuzz_util.hpp"
#include "idx_reader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::size_t split = std::min<std::size_t>(size - 1, data[0] * 4u);
  const std::string images = fuzz::scratch("images");
  const std::string labels = fuzz::scratch("labels");
  fuzz::write_file(images, data + 1, split);
  fuzz::write_file(labels, data + 1 + split, size - 1 - split);
  try {
    auto rows = imgstore::open_idx(images, labels);
    fuzz::drain(*rows);
  } catch (const imgstore::Error&) {
  }
  return 0;
}
