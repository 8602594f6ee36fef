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

// The next code point of s from i, as Python's os.fsdecode (UTF-8, errors='surrogateescape') reads it: a valid
// UTF-8 sequence (no overlong form, no surrogate, at most U+10FFFF) is its code point; any other byte b is the
// lone surrogate U+DC00 + b on its own. Advances i.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  const auto cont = [&](std::size_t k, unsigned char lo, unsigned char hi) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF && cont(i + 1, 0x80, 0xBF)) {
    const char32_t c = (char32_t{b0} & 0x1F) << 6 | (byte(i + 1) & 0x3F);
    i += 2;
    return c;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    const unsigned char lo = b0 == 0xE0 ? 0xA0 : 0x80;
    const unsigned char hi = b0 == 0xED ? 0x9F : 0xBF;
    if (cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xBF)) {
      const char32_t c = (char32_t{b0} & 0x0F) << 12 | (char32_t{byte(i + 1)} & 0x3F) << 6 | (byte(i + 2) & 0x3F);
      i += 3;
      return c;
    }
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    const unsigned char lo = b0 == 0xF0 ? 0x90 : 0x80;
    const unsigned char hi = b0 == 0xF4 ? 0x8F : 0xBF;
    if (cont(i + 1, lo, hi) && cont(i + 2, 0x80, 0xBF) && cont(i + 3, 0x80, 0xBF)) {
      const char32_t c = (char32_t{b0} & 0x07) << 18 | (char32_t{byte(i + 1)} & 0x3F) << 12 |
                         (char32_t{byte(i + 2)} & 0x3F) << 6 | (byte(i + 3) & 0x3F);
      i += 4;
      return c;
    }
  }
  ++i;
  return 0xDC00 + b0;
}

}  // namespace

bool python_name_less(std::string_view a, std::string_view b) {
  // UTF-8 keeps code point order byte for byte, so only a byte that is not valid UTF-8 (a lone surrogate in
  // Python) can order differently: decode both, as sorted() on os.walk's str names compares them.
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < a.size() && j < b.size()) {
    const char32_t x = next_code_point(a, i);
    const char32_t y = next_code_point(b, j);
    if (x != y) return x < y;
  }
  return i == a.size() && j < b.size();
}

namespace {

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
  std::sort(classes.begin(), classes.end(), python_name_less);
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
  std::sort(files_.begin(), files_.end(), python_name_less);
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
  std::sort(level.items.begin(), level.items.end(),
            [](const Item& a, const Item& b) { return python_name_less(a.key, b.key); });
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
