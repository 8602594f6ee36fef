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

// The sub-folders of `dir`, recursively. A folder removed while we walk (a commit tidying up: png_dir's
// .pending/ and .old/<k>/) is skipped: its files are no longer the store's. Other errors are reported.
void walk(const std::filesystem::path& dir, DiskUsage& usage, bool top) {
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    struct stat st{};
    if (::lstat(it->path().c_str(), &st) != 0) continue;  // gone meanwhile
    add(usage, st);
    if (S_ISDIR(st.st_mode)) walk(it->path(), usage, false);
  }
  if (ec && (top || ec != std::errc::no_such_file_or_directory)) {
    throw Error("disk_usage(): cannot walk '" + dir.string() + "': " + ec.message(), ErrorKind::cantopen);
  }
}

}  // namespace

DiskUsage disk_usage(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) {
    throw Error("disk_usage(): cannot stat '" + path + "': " + std::strerror(errno), ErrorKind::cantopen);
  }
  DiskUsage usage;
  add(usage, st);
  if (S_ISDIR(st.st_mode)) walk(path, usage, true);
  return usage;
}

}  // namespace imgstore
