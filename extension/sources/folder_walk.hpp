// torchvision.datasets.ImageFolder's listing of a folder root/<class>/..., streamed, so that image_folder()
// gives each file the index (id) and label ImageFolder gives it:
//
//   classes = sorted(e.name for e in os.scandir(root) if e.is_dir())                    # labels 0, 1, ...
//   for each class: for dirpath, _, files in sorted(os.walk(root/class, followlinks=True)):
//                       for name in sorted(files): if name.lower().endswith(IMG_EXTENSIONS): yield ...
//
// sorted(os.walk(...)) orders the directories by their whole path string, which is not a depth-first order:
// 'c/a-b' (with '-' < '/') comes between 'c/a' and 'c/a/x'. A path string's order can still be produced
// lazily: a directory comes before everything under it, and everything under 'd' (all of 'd/...') is one run
// of that order, placed as the string 'd/' sorts among d's siblings and their runs. So each directory is read
// once, when its turn comes, and memory holds one directory's file names and the names of the sub-directories
// still to visit, never the whole tree.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace imgstore {

// os.path.join(a, b) for a relative b: a '/' between them unless a is empty or already ends with one.
std::string path_join(const std::string& a, const std::string& b);

// a < b as Python's sorted() orders the names os.scandir gives (str, decoded with os.fsdecode): by code point,
// each byte that is not valid UTF-8 a lone surrogate U+DC80..U+DCFF. For UTF-8 names that is byte order.
bool python_name_less(std::string_view a, std::string_view b);

// VisionDataset's os.path.expanduser(root): '~' and '~/...' become $HOME's.
std::string expand_user(const std::string& root);

// ImageFolder's IMG_EXTENSIONS (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp), case-insensitive. Files of
// the other formats are listed (they have an index in ImageFolder) even though only PNG and JPEG are decoded.
bool has_image_extension(std::string_view name);

// The classes of `root`: its sub-directories (symbolic links to directories too, as DirEntry.is_dir() follows
// them), sorted by name as Python sorts them (python_name_less). `fn` names the function in errors. No class is an error, as in
// ImageFolder.
std::vector<std::string> folder_classes(const std::string& root, const std::string& fn);

// The image files under one class directory, in ImageFolder's order, each as os.path.join(dirpath, name).
// Symbolic links to directories are followed (followlinks=True); one that leads back to a directory above it
// is an error (os.walk would go round until the path is too long). A directory that cannot be read is an
// error naming it (os.walk skips it silently, which would shift every later index).
class ClassFiles {
 public:
  ClassFiles(std::string class_dir, std::string fn);
  // The next file, or nullopt when the class has no more.
  std::optional<std::string> next();

 private:
  struct DirId {
    dev_t dev;
    ino_t ino;
    friend bool operator==(const DirId&, const DirId&) = default;
  };
  // A directory's own files (`block` false) or everything under it (`block` true), ordered by `key`: the
  // name, or the name and '/'.
  struct Item {
    std::string key;
    std::string path;
    bool block = false;
  };
  struct Level {
    std::vector<Item> items;
    std::size_t next = 0;
    std::optional<DirId> dir;  // the directory whose block this level is (none for the top)
  };
  // What a directory's listing left for its block: its id and its sub-directories' names.
  struct Pending {
    DirId id;
    std::vector<std::string> subdirs;
  };
  void list(const std::string& dir);
  void descend(const Item& block);

  const std::string fn_;
  std::vector<Level> levels_;
  std::unordered_map<std::string, Pending> pending_;
  std::string files_dir_;
  std::vector<std::string> files_;  // the image files of files_dir_, sorted
  std::size_t next_file_ = 0;
};

}  // namespace imgstore
