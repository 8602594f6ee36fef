// ImageFolder's order, from the file system up: tests/python/test_image_folder.py checks the same against
// torchvision itself.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "error.hpp"
#include "folder_walk.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using imgstore::ClassFiles;
using Paths = std::vector<std::string>;

namespace {

void touch(const TempDir& dir, const std::string& name) {
  fs::create_directories(fs::path(dir.file(name)).parent_path());
  std::ofstream(dir.file(name)) << "x";
}

Paths walk(const std::string& class_dir) {
  Paths paths;
  ClassFiles files(class_dir, "f");
  while (auto p = files.next()) paths.push_back(*p);
  return paths;
}

}  // namespace

TEST_CASE("a class's files in sorted(os.walk()) order: directories by their whole path, not depth first") {
  TempDir dir;
  for (const char* name : {"c/b.png", "c/a.PNG", "c/sub/z.jpg", "c/sub-x/y.jpeg", "c/sub/deeper/x.png", "c/sub.d/w.png",
                           "c/notes.txt", "c/sub/ignored", "c/A/v.webp"}) {
    touch(dir, name);
  }
  const std::string c = dir.file("c");
  // '-' (0x2D) and '.' (0x2E) sort before '/' (0x2F): sub-x and sub.d come before sub/deeper; 'A' before 'a'.
  CHECK(walk(c) == Paths{c + "/a.PNG", c + "/b.png", c + "/A/v.webp", c + "/sub/z.jpg", c + "/sub-x/y.jpeg",
                         c + "/sub.d/w.png", c + "/sub/deeper/x.png"});
}

TEST_CASE("links to folders are followed; a link back up is a cycle, an error naming it") {
  TempDir dir;
  touch(dir, "c/real/a.png");
  touch(dir, "elsewhere/b.png");
  fs::create_directory_symlink(dir.file("elsewhere"), dir.file("c/linked"));
  const std::string c = dir.file("c");
  CHECK(walk(c) == Paths{c + "/linked/b.png", c + "/real/a.png"});
  fs::create_directory_symlink("..", dir.file("c/real/up"));
  CHECK_THROWS_WITH_AS(walk(c), doctest::Contains(("the folder '" + c + "/real/up' is a folder it is inside of").c_str()),
                       imgstore::Error);
}

TEST_CASE("classes are the sub-folders, sorted; files at the top are not classes") {
  TempDir dir;
  touch(dir, "r/dog/a.png");
  touch(dir, "r/cat/b.png");
  touch(dir, "r/top.png");
  fs::create_directories(dir.file("r/empty"));
  CHECK(imgstore::folder_classes(dir.file("r"), "f") == Paths{"cat", "dog", "empty"});
  CHECK_THROWS_WITH_AS(imgstore::folder_classes(dir.file("r/dog"), "f"),
                       doctest::Contains(("f(): the folder '" + dir.file("r/dog") + "' has no class folders").c_str()),
                       imgstore::Error);
  CHECK(walk(dir.file("r/empty")).empty());
}

TEST_CASE("ImageFolder's extensions, any case; os.path.join; expanduser") {
  for (const char* name : {"a.jpg", "a.JPEG", "a.png", "a.ppm", "a.bmp", "a.pgm", "a.tif", "a.TIFF", "a.webp", ".png"}) {
    CHECK(imgstore::has_image_extension(name));
  }
  for (const char* name : {"a.gif", "a.txt", "png", "a.png.bak", "a.jpg "}) CHECK_FALSE(imgstore::has_image_extension(name));
  CHECK(imgstore::path_join("root", "cat") == "root/cat");
  CHECK(imgstore::path_join("root/", "cat") == "root/cat");
  CHECK(imgstore::path_join("", "cat") == "cat");
  CHECK(imgstore::expand_user("photos") == "photos");
  CHECK(imgstore::expand_user("~user/x") == "~user/x");
  if (const char* home = std::getenv("HOME"); home != nullptr && std::string(home) != "/") {
    CHECK(imgstore::expand_user("~/x") == std::string(home) + "/x");
  }
}

TEST_CASE("names are ordered as Python orders os.fsdecode()d str: a byte that is not UTF-8 is U+DC00 + byte") {
  using imgstore::python_name_less;
  CHECK(python_name_less("a", "b"));
  CHECK(python_name_less("a", "ab"));
  CHECK_FALSE(python_name_less("ab", "ab"));
  CHECK(python_name_less("a\xe4\xb8\xad", "a\xc3"));          // U+4E2D < U+DCC3, though 0xE4 > 0xC3
  CHECK(python_name_less("a\xff", "a\xee\x80\x80"));          // U+DCFF < U+E000, though 0xFF > 0xEE
  CHECK(python_name_less("a\xe0", "a\xee\x80\x80"));          // a lone lead byte is U+DCE0
  CHECK(python_name_less("\xed\xa0\x80", "\xee\x80\x80"));    // an encoded surrogate is three bad bytes
  CHECK(python_name_less("\xf4\x90\x80\x80", "\xf0\x9f\x98\x80"));  // beyond U+10FFFF: U+DCF4.. < U+1F600
  CHECK(python_name_less("sub-x", "sub/"));                   // what os.walk's order rests on
}
