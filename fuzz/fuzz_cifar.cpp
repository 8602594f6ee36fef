// The CIFAR-10 / CIFAR-100 reader on any file: rows to the end, pixels converted, or an Error.
#include "cifar10_reader.hpp"
#include "error.hpp"
#include "fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::scratch("batch.bin");
  fuzz::write_file(path, data, size);
  for (const char* format : {"cifar10", "cifar100"}) {
    try {
      auto rows = imgstore::open_cifar(imgstore::CifarOptions{path, 0, "train", format});
      fuzz::drain(*rows);
    } catch (const imgstore::Error&) {
    }
  }
  return 0;
}
