// Helpers for the libFuzzer harnesses: inputs written to a scratch file, since the readers take paths.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

namespace fuzz {

// A per-process scratch path under /tmp, overwritten by every run.
inline std::string scratch(const char* name) {
  return "/tmp/imgstore-fuzz-" + std::to_string(::getpid()) + "-" + name;
}

inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

// Reads every row of a source (label and pixels too), at most 100,000.
template <typename Rows>
void drain(Rows& rows) {
  for (int n = 0; !rows.at_end() && n < 100000; ++n) {
    (void)rows.label();
    (void)rows.pixels();
    rows.next();
  }
}

}  // namespace fuzz
