// Sizes of a file or a directory tree, as the experiments report them.
#pragma once

#include <cstdint>
#include <string>

namespace imgstore {

struct DiskUsage {
  std::uint64_t allocated = 0;  // st_blocks * 512: what the files take on disk
  std::uint64_t apparent = 0;   // st_size: what ls -l shows
};

// Walks a directory tree without following symbolic links. Throws Error naming the path if it is missing.
DiskUsage disk_usage(const std::string& path);

}  // namespace imgstore
