#include "folder_walk.hpp"

#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "error.hpp"
#include "posix_file.hpp"

namespace imgstore {

namespace {

struct CloseDir {
  void operator()(DIR* dir) const noexcept { ::closedir(dir); }
};
using Dir = std::unique_ptr<DIR, CloseDir>;

Dir open_dir(const std::string& path, const std::string& fn) {
  Dir dir(::opendir(path.c_str()));
  if (!dir) throw_errno(fn + "(): cannot read the folder '" + path + "'", errno);
  return dir;
}

// DirEntry.is_dir() as os.scandir and os.walk ask it: the entry's type, following a symbolic link (a broken
// link is not a directory, so it counts as a file).
bool is_directory(const dirent& entry, const std::string& path) {
  if (entry.d_type == DT_DIR) return true;
  if (entry.d_type != DT_LNK && entry.d_type != DT_UNKNOWN) return false;
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_dot(const char* name) { return std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0; }

// Lists one directory: calls on_entry(name, is_dir) for each entry but . and ..
template <typename OnEntry>
void read_dir(const std::string& path, const std::string& fn, OnEntry&& on_entry) {
  const Dir dir = open_dir(path, fn);
  for (;;) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) throw_errno(fn + "(): cannot read the folder '" + path + "'", errno);
      return;
    }
    if (is_dot(entry->d_name)) continue;
    on_entry(std::string(entry->d_name), is_directory(*entry, path_join(path, entry->d_name)));
  }
}

}  // namespace

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty() || a.back() == '/') return a + b;
  return a + "/" + b;
}

std::string expand_user(const std::string& root) {
  if (root != "~" && !root.starts_with("~/")) return root;
  std::string home;
  if (const char* env = std::getenv("HOME"); env != nullptr) {
    home = env;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    home = pw->pw_dir;
  } else {
    return root;
  }
  // posixpath.expanduser strips a trailing '/' from the home directory (keeping '/' alone).
  while (home.size() > 1 && home.back() == '/') home.pop_back();
  return home + root.substr(1);
}

bool has_image_extension(std::string_view name) {
  static constexpr std::array<std::string_view, 9> kExtensions = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                                                  ".pgm", ".tif", ".tiff", ".webp"};
  for (const auto extension : kExtensions) {
    if (name.size() < extension.size()) continue;
    const auto tail = name.substr(name.size() - extension.size());
    const bool same = std::equal(tail.begin(), tail.end(), extension.begin(), [](char a, char b) {
      return (a >= 'A' && a <= 'Z' ? static_cast<char>(a - 'A' + 'a') : a) == b;
    });
    if (same) return true;
  }
  return false;
}

std::vector<std::string> folder_classes(const std::string& root, const std::string& fn) {
  std::vector<std::string> classes;
  read_dir(root, fn, [&](std::string name, bool dir) {
    if (dir) classes.push_back(std::move(name));
  });
  if (classes.empty()) {
    throw Error(fn + "(): the folder '" + root + "' has no class folders; expected " + path_join(root, "<class>") +
                    "/ folders of images, as torchvision's ImageFolder reads",
                ErrorKind::cantopen);
  }
  std::sort(classes.begin(), classes.end());
  return classes;
}

ClassFiles::ClassFiles(std::string class_dir, std::string fn) : fn_(std::move(fn)) {
  Level top;
  top.items.push_back(Item{"", class_dir, false});
  top.items.push_back(Item{"/", std::move(class_dir), true});
  levels_.push_back(std::move(top));
}

void ClassFiles::list(const std::string& dir) {
  struct stat st{};
  if (::stat(dir.c_str(), &st) != 0) throw_errno(fn_ + "(): cannot read the folder '" + dir + "'", errno);
  const DirId id{st.st_dev, st.st_ino};
  for (const Level& level : levels_) {
    if (level.dir && *level.dir == id) {
      throw Error(fn_ + "(): the folder '" + dir + "' is a folder it is inside of, reached again through a "
                        "symbolic link (a cycle); expected a tree",
                  ErrorKind::corrupt);
    }
  }
  files_dir_ = dir;
  files_.clear();
  next_file_ = 0;
  Pending pending{id, {}};
  read_dir(dir, fn_, [&](std::string name, bool is_dir) {
    if (is_dir) {
      pending.subdirs.push_back(std::move(name));
    } else if (has_image_extension(name)) {
      files_.push_back(std::move(name));
    }
  });
  std::sort(files_.begin(), files_.end());
  if (!pending.subdirs.empty()) pending_.insert_or_assign(dir, std::move(pending));
}

void ClassFiles::descend(const Item& block) {
  const auto found = pending_.find(block.path);
  if (found == pending_.end()) return;  // no sub-directories
  Level level;
  level.dir = found->second.id;
  for (const auto& name : found->second.subdirs) {
    const std::string child = path_join(block.path, name);
    level.items.push_back(Item{name, child, false});
    level.items.push_back(Item{name + "/", child, true});
  }
  pending_.erase(found);
  std::sort(level.items.begin(), level.items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  levels_.push_back(std::move(level));
}

std::optional<std::string> ClassFiles::next() {
  for (;;) {
    if (next_file_ < files_.size()) return path_join(files_dir_, files_[next_file_++]);
    while (!levels_.empty() && levels_.back().next == levels_.back().items.size()) levels_.pop_back();
    if (levels_.empty()) return std::nullopt;
    Level& level = levels_.back();
    const Item item = level.items[level.next++];
    if (item.block) {
      descend(item);
    } else {
      list(item.path);
    }
  }
}

}  // namespace imgstore
