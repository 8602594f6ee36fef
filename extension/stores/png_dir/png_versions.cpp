#include "png_versions.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <filesystem>

#include "error.hpp"
#include "png_dir_locks.hpp"

namespace imgstore::png_dir {

namespace {

namespace fs = std::filesystem;

std::string old_root(const std::string& dir) { return dir + "/" + png_dir_format::old_dir; }
std::string old_folder(const std::string& dir, std::uint64_t generation) {
  return old_root(dir) + "/" + std::to_string(generation);
}

void make_dir(const std::string& path, const std::string& where) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) throw_errno(where + ": cannot create '" + path + "'", errno);
}

}  // namespace

std::uint64_t read_generation(const std::string& dir, const std::string& what) {
  const std::string path = old_root(dir) + "/" + png_dir_format::generation_file;
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno == ENOENT) return 0;
    throw_errno(what + ": cannot open '" + path + "'", errno);
  }
  std::vector<std::uint8_t> raw;
  read_whole(fd.get(), path, raw, what);
  return png_dir_format::parse_generation(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                          what + ": '" + path + "'");
}

void write_generation(const std::string& dir, std::uint64_t generation, const std::string& where) {
  make_dir(old_root(dir), where);
  const std::string path = old_root(dir) + "/" + png_dir_format::generation_file;
  const std::string text = png_dir_format::generation_text(generation);
  {
    const Fd fd = open_or_throw(path + ".tmp", O_WRONLY | O_CREAT | O_TRUNC, where);
    write_all(fd.get(), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, path + ".tmp", where);
    fsync_or_throw(fd.get(), path + ".tmp", where);
  }
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0) throw_errno(where + ": cannot rename to '" + path + "'", errno);
}

void sync_old(const std::string& dir, const std::string& where) {
  const Fd fd(::open(old_root(dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) fsync_or_throw(fd.get(), old_root(dir), where);
}

void keep_old(const std::string& dir, const png_dir_format::CommitRecord& record, const std::string& where) {
  if (!record.generation) return;  // a record of an earlier build: it kept nothing
  make_dir(old_root(dir), where);
  const std::string folder = old_folder(dir, *record.generation);
  make_dir(folder, where);
  for (const auto& rename : record.renames) {
    const std::string name = png_dir_format::image_name(rename.first);
    const std::string from = dir + "/" + name;
    // EEXIST: kept by an earlier run of this record (its file since replaced); ENOENT: no file to keep.
    if (::link(from.c_str(), (folder + "/" + name).c_str()) != 0 && errno != EEXIST && errno != ENOENT) {
      throw_errno(where + ": cannot keep the replaced '" + from + "' for readers in '" + folder + "'", errno);
    }
  }
  for (const auto id : record.deletes) {
    const std::string name = png_dir_format::image_name(id);
    const std::string from = dir + "/" + name;
    if (::rename(from.c_str(), (folder + "/" + name).c_str()) != 0 && errno != ENOENT) {
      throw_errno(where + ": cannot keep the deleted '" + from + "' for readers in '" + folder + "'", errno);
    }
  }
}

Fd open_as_of(const std::string& dir, const std::string& path, std::int64_t id, std::optional<std::uint64_t> as_of,
              std::string& opened, const std::string& what) {
  opened = path;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  const int err = fd ? 0 : errno;
  if (as_of) {
    std::string name = "/";
    name.append(png_dir_format::image_name(id));  // appended: GCC 12 warns falsely (-Wrestrict) on "/" + string
    for (std::uint64_t k = *as_of + 1;; ++k) {
      const std::string folder = old_folder(dir, k);
      if (::access(folder.c_str(), F_OK) != 0) break;  // no commit k yet: what we opened is our version
      Fd kept(::open((folder + name).c_str(), O_RDONLY | O_CLOEXEC));
      if (kept) {
        opened = folder + name;
        return kept;
      }
    }
  }
  if (err != 0 && err != ENOENT) throw_errno(what + ": cannot open '" + path + "'", err);
  return fd;
}

void prune_old(const std::string& dir, int meta) {
  std::vector<std::uint64_t> folders;
  std::error_code ec;
  for (fs::directory_iterator it(old_root(dir), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::uint64_t k = 0;
    const auto [last, parsed] = std::from_chars(name.data(), name.data() + name.size(), k);
    if (parsed == std::errc{} && last == name.data() + name.size()) folders.push_back(k);  // not the generation file
  }
  for (const auto k : folders) {
    try {
      if (readers_before(meta, k)) continue;
    } catch (const Error&) {
      continue;
    }
    std::error_code removed;
    fs::remove_all(old_folder(dir, k), removed);
  }
}

}  // namespace imgstore::png_dir
