#include "disk_usage.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "error.hpp"

namespace imgstore {

namespace {

void add(DiskUsage& usage, const struct stat& st) {
  usage.allocated += static_cast<std::uint64_t>(st.st_blocks) * 512;
  if (!S_ISDIR(st.st_mode)) usage.apparent += static_cast<std::uint64_t>(st.st_size);
}

}  // namespace

DiskUsage disk_usage(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    throw Error("disk_usage(): cannot stat '" + path + "': " + std::strerror(errno), ErrorKind::cantopen);
  }
  DiskUsage usage;
  add(usage, st);
  if (!S_ISDIR(st.st_mode)) return usage;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (::lstat(it->path().c_str(), &st) == 0) add(usage, st);
  }
  if (ec) throw Error("disk_usage(): cannot walk '" + path + "': " + ec.message(), ErrorKind::cantopen);
  return usage;
}

}  // namespace imgstore
