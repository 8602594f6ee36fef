#include "png_versions.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
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

// The generations .old/ holds folders of (its numbered entries; none when there is no .old/).
std::vector<std::uint64_t> kept_generations(const std::string& dir) {
  std::vector<std::uint64_t> found;
  std::error_code ec;
  for (fs::directory_iterator it(old_root(dir), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::uint64_t k = 0;
    const auto [last, parsed] = std::from_chars(name.data(), name.data() + name.size(), k);
    if (parsed == std::errc{} && last == name.data() + name.size()) found.push_back(k);  // not the generation file
  }
  return found;
}

}  // namespace

std::uint64_t read_generation(const std::string& dir, const std::string& what) {
  const std::string path = old_root(dir) + "/" + png_dir_format::generation_file;
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    if (errno != ENOENT) throw_errno(what + ": cannot open '" + path + "'", errno);
    // No commit has replaced files (0), unless the file was lost: .old/ is made with it, and files kept there
    // would be taken for this state's (a generation counted again from 0 meets earlier commits' folders).
    if (::access(old_root(dir).c_str(), F_OK) == 0) {
      throw Error(what + ": '" + path + "' is missing while '" + old_root(dir) +
                      "' is there; imgstore_repair() rebuilds it once no statement reads the store",
                  ErrorKind::corrupt);
    }
    return 0;
  }
  std::vector<std::uint8_t> raw;
  read_whole(fd.get(), path, raw, what);
  return png_dir_format::parse_generation(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                          what + ": '" + path + "'");
}

bool settle_generation(const std::string& dir, int meta, const std::string& where) {
  try {
    (void)read_generation(dir, where);
    return true;
  } catch (const Error&) {
  }
  if (readers_before(meta, png_dir_format::kMostGenerations)) return false;
  // Nobody reads: what .old holds is no one's. Count again from 0, or from above any folder left in place
  // (a statement must never take a folder of an earlier count for its own).
  std::uint64_t top = 0;
  for (const auto k : kept_generations(dir)) {
    std::error_code ec;
    if (fs::remove_all(old_folder(dir, k), ec) == static_cast<std::uintmax_t>(-1)) top = std::max(top, k);
  }
  if (top > png_dir_format::kMostGenerations) {
    throw Error(where + ": cannot remove '" + old_folder(dir, top) + "'", ErrorKind::corrupt);
  }
  write_generation(dir, top, where);
  sync_old(dir, where);
  return true;
}

void write_generation(const std::string& dir, std::uint64_t generation, const std::string& where) {
  make_dir(old_root(dir), where);
  const std::string path = old_root(dir) + "/" + png_dir_format::generation_file;
  write_synced(path + ".tmp", png_dir_format::generation_text(generation), where);
  if (::rename((path + ".tmp").c_str(), path.c_str()) != 0) throw_errno(where + ": cannot rename to '" + path + "'", errno);
}

void sync_old(const std::string& dir, const std::string& where) {
  const Fd fd(::open(old_root(dir).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) fsync_or_throw(fd.get(), old_root(dir), where);
}

namespace {

// `from` kept at `to` for readers: a hard link of the file (of its target, if it is a symbolic link, whose
// relative target would not resolve from .old/), or a copy where the file system has no hard links.
void keep(const std::string& from, const std::string& to, const std::string& where) {
  if (::linkat(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), AT_SYMLINK_FOLLOW) == 0) return;
  // EEXIST: kept by an earlier run of this record (its file since replaced); ENOENT: no file to keep.
  if (errno == EEXIST || errno == ENOENT) return;
  std::vector<std::uint8_t> bytes;
  try {
    read_whole(from, bytes, where);
    const Fd fd = open_or_throw(to + ".tmp", O_WRONLY | O_CREAT | O_TRUNC, where);
    write_all(fd.get(), bytes, to + ".tmp", where);
  } catch (const Error& e) {
    throw Error(where + ": cannot keep '" + from + "' for the statements reading it: " + e.what(), e.kind());
  }
  if (::rename((to + ".tmp").c_str(), to.c_str()) != 0) throw_errno(where + ": cannot rename to '" + to + "'", errno);
}

}  // namespace

void keep_old(const std::string& dir, const png_dir_format::CommitRecord& record, int meta, const std::string& where) {
  // A record of an earlier build kept nothing; with no statement of an earlier generation reading, nobody
  // needs what this one replaces (statements starting wait for the exclusive lock the caller holds).
  if (!record.generation || !readers_before(meta, *record.generation)) return;
  make_dir(old_root(dir), where);
  const std::string folder = old_folder(dir, *record.generation);
  make_dir(folder, where);
  for (const auto& rename : record.renames) {
    const std::string name = png_dir_format::image_name(rename.first);
    keep(dir + "/" + name, folder + "/" + name, where);
  }
  for (const auto id : record.deletes) {
    const std::string name = png_dir_format::image_name(id);
    keep(dir + "/" + name, folder + "/" + name, where);
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
      if (::access(folder.c_str(), F_OK) != 0) {
        if (errno == ENOENT) break;  // no commit k kept files yet: what we opened is our version
        throw_errno(what + ": cannot look in '" + folder + "'", errno);
      }
      Fd kept(::open((folder + name).c_str(), O_RDONLY | O_CLOEXEC));
      if (kept) {
        opened = folder + name;
        return kept;
      }
      // Only "not kept here" goes on to the next commit: anything else would read a newer file than ours.
      if (errno != ENOENT) throw_errno(what + ": cannot open '" + folder + name + "'", errno);
    }
  }
  if (err != 0 && err != ENOENT) throw_errno(what + ": cannot open '" + path + "'", err);
  return fd;
}

void prune_old(const std::string& dir, int meta) {
  for (const auto k : kept_generations(dir)) {
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
