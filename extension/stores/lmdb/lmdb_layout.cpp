#include "lmdb_layout.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <thread>

#include "error.hpp"

namespace imgstore::lmdb {

namespace {

std::string without_trailing_slashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string base_name(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

// Takes the temporary's lock on `fd`, and checks that `path` still names the file it is on (another process
// that found it abandoned may have removed it between its making and the lock).
bool lock_if_still_there(int fd, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) return false;
  const auto held = file_id(fd);
  return held && file_id(path) == held;
}

}  // namespace

Layout Layout::of(Version version, const std::string& path) {
  Layout layout;
  layout.version = version;
  layout.store = without_trailing_slashes(path);
  if (version == Version::v2) {
    layout.data = layout.store + "/" + lmdb_format::data_file;
    layout.lock = layout.store + "/" + lmdb_format::lock_file;
  } else {
    layout.data = layout.store;
    layout.lock = layout.store + lmdb_format::v1_lock_suffix;
  }
  return layout;
}

std::optional<Layout> find_layout(const std::string& table, const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  if (S_ISREG(st.st_mode)) return Layout::of(Version::v1, path);
  if (S_ISDIR(st.st_mode)) {
    const Layout layout = Layout::of(Version::v2, path);
    if (::stat(layout.data.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return layout;
    throw Error("table " + table + ": path '" + path + "' is a directory without " + lmdb_format::data_file +
                    "; expected an lmdb store: an LMDB environment directory (data.mdb, .imgstore) or an LMDB data "
                    "file, or a path where none exists yet",
                ErrorKind::cantopen);
  }
  throw Error("table " + table + ": path '" + path +
                  "' is not a regular file or a directory; expected an lmdb store (an LMDB environment directory or "
                  "data file)",
              ErrorKind::cantopen);
}

std::optional<FileId> file_id(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

std::optional<FileId> file_id(int fd) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

std::optional<Temporary> Temporary::make(const std::string& path, Kind kind, const std::string& what) {
  bool made_once = false;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Fd fd;
    bool made = false;  // then a failed open means another process removed it at once
    if (kind == Kind::directory) {
      made = ::mkdir(path.c_str(), 0775) == 0;
      if (made) fd = Fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    } else {
      fd = Fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0664));
    }
    if (fd && lock_if_still_there(fd.get(), path)) return Temporary(path, std::move(fd));
    if (!fd && !made && errno != EEXIST) throw_errno(what + ": cannot make '" + path + "'", errno);
    // Made, but another process found it unlocked between its making and the lock, and removes it: made again
    // once it is gone. Found in the way: an abandoned one is removed now; one a live process holds is theirs.
    made_once = made_once || made || fd;
    if (!fd && !made_once && !remove_if_abandoned(path) && exists(path)) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  throw Error(what + ": '" + path + "' keeps appearing and vanishing; another process is making and removing it",
              ErrorKind::busy);
}

void Temporary::remove() noexcept {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  fd_ = Fd();
}

// A directory holding nothing but a store's files: what a temporary holds. Anything else at a temporary's name is
// someone's own, never removed.
static bool only_store_files(const std::string& path) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != lmdb_format::data_file && name != lmdb_format::lock_file && name != lmdb_format::meta_file) return false;
  }
  return !ec;
}

bool remove_if_abandoned(const std::string& path) noexcept {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) return !exists(path);
  if (!lock_if_still_there(fd.get(), path)) return false;
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0 || (S_ISDIR(st.st_mode) && !only_store_files(path)) ||
      (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))) {
    return false;
  }
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  return !exists(path);
}  // closing fd drops the lock

void remove_abandoned_temporaries(const std::string& store) noexcept {
  const std::string clean = without_trailing_slashes(store);
  remove_if_abandoned(clean + lmdb_format::compact_suffix);
  const std::string parent = parent_of(clean);
  const std::string prefix = base_name(clean) + lmdb_format::new_infix;
  const std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(parent.c_str()), ::closedir);
  if (!dir) return;
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0) remove_if_abandoned(parent + "/" + name);
  }
}

std::string new_store_name(const std::string& store) {
  static std::atomic<unsigned> made{0};
  return without_trailing_slashes(store) + lmdb_format::new_infix + std::to_string(::getpid()) + "-" +
         std::to_string(made.fetch_add(1));
}

std::string parent_of(const std::string& path) {
  const std::string clean = without_trailing_slashes(path);
  const auto slash = clean.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : clean.substr(0, slash);
}

void fsync_path(const std::string& path, const std::string& what) {
  const Fd fd = open_or_throw(path, O_RDONLY, what);
  fsync_or_throw(fd.get(), path, what);
}

void write_new_synced(const std::string& path, std::string_view text, const std::string& what) {
  const Fd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_EXCL, what, 0664);
  write_all(fd.get(), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, path, what);
  fsync_or_throw(fd.get(), path, what);
}

int rename2(const std::string& from, const std::string& to, unsigned flags) noexcept {
  return ::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), flags) == 0 ? 0 : errno;
}

}  // namespace imgstore::lmdb
