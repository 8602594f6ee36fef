// The CREATE VIRTUAL TABLE argument parser and the shape parser: any bytes give a value or an Error.
#include <string>
#include <vector>

#include "args.hpp"
#include "error.hpp"
#include "shape.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  std::string::size_type start = 0;
  for (std::string::size_type i = 0; i <= input.size(); ++i) {
    if (i == input.size() || input[i] == '\n') {
      parts.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  }
  try {
    const imgstore::Args args("t", {"path", "shape", "level", "compression", "chunk"}, parts);
    if (const auto shape = args.get("shape")) (void)imgstore::parse_shape(*shape, "t");
    (void)args.integer("level", 0, 9, 6);
    (void)args.integer("chunk", 1, 1 << 20, 0);
  } catch (const imgstore::Error&) {
  }
  try {
    (void)imgstore::parse_shape(input, "t");
  } catch (const imgstore::Error&) {
  }
  return 0;
}
