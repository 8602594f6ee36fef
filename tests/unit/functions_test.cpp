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

// The extension loaded into an in-memory database of the dlopen'ed libsqlite3.
class Connection {
 public:
  Connection() {
    REQUIRE(lib_.handle != nullptr);
    REQUIRE((open_ && close_ && enable_ && load_ && prepare_ && step_ && finalize_ && column_text_ && free_));
    sqlite3* db = nullptr;
    REQUIRE(open_(":memory:", &db) == SQLITE_OK);
    db_.reset(db);
    enable_(db, 1);
    const std::string extension = extension_path();
    char* err = nullptr;
    const int loaded = load_(db, extension.c_str(), "sqlite3_imgstore_init", &err);
    const std::string why = "loading " + extension + ": " + (err != nullptr ? err : "");
    free_(err);
    INFO(why);
    REQUIRE(loaded == SQLITE_OK);
  }

  // Steps `sql` once, with every C++ allocation failing while SQLite steps when `failing`; returns the result
  // code and the first column as text. Checks that no exception unwound through SQLite's C frames.
  std::pair<int, std::string> step_once(const char* sql, bool failing) {
    sqlite3_stmt* raw = nullptr;
    REQUIRE(prepare_(db_.get(), sql, -1, &raw, nullptr) == SQLITE_OK);
    const std::unique_ptr<sqlite3_stmt, decltype(finalize_)> stmt(raw, finalize_);
    int rc = 0;
    bool escaped = false;
    try {
      const std::optional<imgstore::test::FailAllocations> guard =
          failing ? std::optional<imgstore::test::FailAllocations>(std::in_place, 1) : std::nullopt;
      rc = step_(raw);
    } catch (const std::bad_alloc&) {
      escaped = true;  // an exception unwound through SQLite's C frames
    }
    CHECK_FALSE(escaped);
    const auto* text = rc == SQLITE_ROW ? column_text_(raw, 0) : nullptr;
    return {rc, text != nullptr ? std::string(reinterpret_cast<const char*>(text)) : ""};
  }

 private:
  const Library lib_;
  decltype(sqlite3_open)* const open_ = lib_.get<decltype(sqlite3_open)>("sqlite3_open");
  decltype(sqlite3_close_v2)* const close_ = lib_.get<decltype(sqlite3_close_v2)>("sqlite3_close_v2");
  decltype(sqlite3_enable_load_extension)* const enable_ =
      lib_.get<decltype(sqlite3_enable_load_extension)>("sqlite3_enable_load_extension");
  decltype(sqlite3_load_extension)* const load_ = lib_.get<decltype(sqlite3_load_extension)>("sqlite3_load_extension");
  decltype(sqlite3_prepare_v2)* const prepare_ = lib_.get<decltype(sqlite3_prepare_v2)>("sqlite3_prepare_v2");
  decltype(sqlite3_step)* const step_ = lib_.get<decltype(sqlite3_step)>("sqlite3_step");
  decltype(sqlite3_finalize)* const finalize_ = lib_.get<decltype(sqlite3_finalize)>("sqlite3_finalize");
  decltype(sqlite3_column_text)* const column_text_ = lib_.get<decltype(sqlite3_column_text)>("sqlite3_column_text");
  decltype(sqlite3_free)* const free_ = lib_.get<decltype(sqlite3_free)>("sqlite3_free");
  std::unique_ptr<sqlite3, decltype(close_)> db_{nullptr, close_};
};

TEST_CASE("image_digest's final step reports an allocation failure as SQLITE_NOMEM, not an exception") {
  Connection db;
  const char* const sql = "SELECT image_digest(7, 1, x'0102')";
  CHECK(db.step_once(sql, false).first == SQLITE_ROW);
  CHECK(db.step_once(sql, true).first == SQLITE_NOMEM);
  CHECK(db.step_once(sql, false).second.rfind("1:", 0) == 0);  // the connection still works
}

TEST_CASE("image_mean and image_grid report an allocation failure as SQLITE_NOMEM, not an exception") {
  Connection db;
  // With every allocation failing, the first row's step cannot make the aggregate's state.
  for (const char* sql :
       {"SELECT hex(image_mean(pixels, '2x2x1', 1)) FROM (SELECT x'00020406' AS pixels UNION ALL SELECT x'02020202')",
        "SELECT length(image_grid(pixels, '2x2x1', 2)) FROM (SELECT x'00020406' AS pixels UNION ALL SELECT x'02020202')"}) {
    CAPTURE(sql);
    const auto expected = db.step_once(sql, false);
    CHECK(expected.first == SQLITE_ROW);
    CHECK(db.step_once(sql, true).first == SQLITE_NOMEM);
    CHECK(db.step_once(sql, false) == expected);  // the connection still works
  }
}
