// The SQL functions' callbacks never let an exception cross into SQLite: with every C++ allocation failing,
// image_digest's xFinal must turn std::bad_alloc into SQLITE_NOMEM. The unit tests do not link SQLite (the
// extension must not share a process with a second copy), so libsqlite3 and build/imgstore.so are dlopen'ed.
#include <dlfcn.h>
#include <sqlite3.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <doctest/doctest.h>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>

#include "failing_allocator.hpp"


namespace {

// The extension built beside this test (build/tests/unit_tests -> build/imgstore.so), or $IMGSTORE_TEST_EXTENSION.
std::string extension_path() {
  if (const char* env = std::getenv("IMGSTORE_TEST_EXTENSION")) return env;
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return "imgstore.so";
  self[n] = '\0';
  return (std::filesystem::path(self).parent_path().parent_path() / "imgstore.so").string();
}

struct Library {
  void* handle = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
  ~Library() {
    if (handle != nullptr) dlclose(handle);
  }
  template <typename F>
  F* get(const char* name) const {
    return reinterpret_cast<F*>(dlsym(handle, name));
  }
};

}  // namespace

TEST_CASE("image_digest's final step reports an allocation failure as SQLITE_NOMEM, not an exception") {
  const Library lib;
  REQUIRE(lib.handle != nullptr);
  const auto open = lib.get<decltype(sqlite3_open)>("sqlite3_open");
  const auto close = lib.get<decltype(sqlite3_close_v2)>("sqlite3_close_v2");
  const auto enable = lib.get<decltype(sqlite3_enable_load_extension)>("sqlite3_enable_load_extension");
  const auto load = lib.get<decltype(sqlite3_load_extension)>("sqlite3_load_extension");
  const auto prepare = lib.get<decltype(sqlite3_prepare_v2)>("sqlite3_prepare_v2");
  const auto step = lib.get<decltype(sqlite3_step)>("sqlite3_step");
  const auto finalize = lib.get<decltype(sqlite3_finalize)>("sqlite3_finalize");
  const auto column_text = lib.get<decltype(sqlite3_column_text)>("sqlite3_column_text");
  const auto sql_free = lib.get<decltype(sqlite3_free)>("sqlite3_free");
  REQUIRE((open && close && enable && load && prepare && step && finalize && column_text && sql_free));

  sqlite3* db = nullptr;
  REQUIRE(open(":memory:", &db) == SQLITE_OK);
  const std::unique_ptr<sqlite3, decltype(close)> owned(db, close);
  enable(db, 1);
  const std::string extension = extension_path();
  char* err = nullptr;
  const int loaded = load(db, extension.c_str(), "sqlite3_imgstore_init", &err);
  const std::string why = "loading " + extension + ": " + (err != nullptr ? err : "");
  sql_free(err);
  INFO(why);
  REQUIRE(loaded == SQLITE_OK);

  const auto digest = [&](bool failing) {
    sqlite3_stmt* raw = nullptr;
    REQUIRE(prepare(db, "SELECT image_digest(7, 1, x'0102')", -1, &raw, nullptr) == SQLITE_OK);
    const std::unique_ptr<sqlite3_stmt, decltype(finalize)> stmt(raw, finalize);
    int rc = 0;
    bool escaped = false;
    try {
      // Every C++ allocation fails while SQLite steps (with `failing`).
      const std::optional<imgstore::test::FailAllocations> guard =
          failing ? std::optional<imgstore::test::FailAllocations>(std::in_place, 1) : std::nullopt;
      rc = step(raw);
    } catch (const std::bad_alloc&) {
      escaped = true;  // an exception unwound through SQLite's C frames
    }
    CHECK_FALSE(escaped);
    return std::pair(rc, rc == SQLITE_ROW ? std::string(reinterpret_cast<const char*>(column_text(raw, 0))) : "");
  };
  CHECK(digest(false).first == SQLITE_ROW);
  CHECK(digest(true).first == SQLITE_NOMEM);
  CHECK(digest(false).second.rfind("1:", 0) == 0);  // the connection still works
}
