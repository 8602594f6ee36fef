// lmdb stores' files: where they are by format, temporaries told abandoned from in progress, and compaction
// beside this process's own readers and writers (other processes: tests/lmdb_compact_test.py).
#include <doctest/doctest.h>

#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "error.hpp"
#include "fork_child.hpp"
#include "lmdb_env.hpp"
#include "lmdb_format.hpp"
#include "lmdb_layout.hpp"
#include "lmdb_store.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using imgstore::Error;
using imgstore::ErrorKind;
using imgstore::Image;
using imgstore::lmdb::Layout;
using imgstore::lmdb::Temporary;
using imgstore::lmdb_format::Version;

namespace {

std::vector<std::uint8_t> pixels_of(std::int64_t id) {
  std::vector<std::uint8_t> v(8 * 8 * 3);
  std::iota(v.begin(), v.end(), static_cast<std::uint8_t>(id * 7));
  return v;
}

void fill(imgstore::Store& store, std::int64_t n) {
  store.begin();
  for (std::int64_t id = 0; id < n; ++id) store.put(Image{id, id % 10, pixels_of(id), {}}, false);
  store.sync();
}

// Every row the cursor gives, each checked byte for byte against what was written.
std::int64_t rows_checked(imgstore::Cursor& rows) {
  std::int64_t n = 0;
  for (; !rows.at_end(); rows.next(), ++n) {
    const auto want = pixels_of(rows.id());
    const auto got = rows.pixels();
    CHECK(rows.label() == rows.id() % 10);
    CHECK(std::equal(got.begin(), got.end(), want.begin(), want.end()));
  }
  return n;
}

// Entries in the data file the path names now, read with LMDB alone (as mdb_stat would).
std::size_t entries_on_disk(const std::string& path) {
  MDB_env* env = nullptr;
  mdb_env_create(&env);
  REQUIRE(mdb_env_open(env, path.c_str(), MDB_RDONLY, 0644) == MDB_SUCCESS);
  MDB_stat st{};
  mdb_env_stat(env, &st);
  mdb_env_close(env);
  return st.ms_entries;
}

}  // namespace

TEST_CASE("a store's layout follows what is at its path") {
  const TempDir dir("imgstore-compact-");
  CHECK_FALSE(imgstore::lmdb::find_layout("t", dir.file("none.lmdb")));
  const Layout v2 = Layout::of(Version::v2, dir.file("d.lmdb") + "//");
  CHECK(v2.store == dir.file("d.lmdb"));
  CHECK(v2.data == dir.file("d.lmdb/data.mdb"));
  CHECK(v2.lock == dir.file("d.lmdb/lock.mdb"));
  CHECK(v2.meta() == dir.file("d.lmdb/.imgstore"));
  fs::create_directories(dir.file("d.lmdb"));
  CHECK_THROWS_WITH_AS(imgstore::lmdb::find_layout("t", dir.file("d.lmdb")),
                       doctest::Contains("is a directory without data.mdb; expected an lmdb store"), Error);
  { std::FILE* f = std::fopen(dir.file("d.lmdb/data.mdb").c_str(), "w"); std::fclose(f); }
  CHECK(imgstore::lmdb::find_layout("t", dir.file("d.lmdb"))->version == Version::v2);
  { std::FILE* f = std::fopen(dir.file("f.lmdb").c_str(), "w"); std::fclose(f); }
  const auto v1 = imgstore::lmdb::find_layout("t", dir.file("f.lmdb"));
  CHECK(v1->version == Version::v1);
  CHECK(v1->lock == dir.file("f.lmdb-lock"));
}

TEST_CASE("a temporary is removed by others only once its maker has died") {
  const TempDir dir("imgstore-compact-");
  const std::string path = dir.file("s.lmdb.imgstore-compact");
  {
    auto held = Temporary::make(path, Temporary::Kind::directory, "t");
    REQUIRE(held);
    ForkedChild other([&] { return imgstore::lmdb::remove_if_abandoned(path) ? 1 : 0; });
    CHECK(other.wait() == 0);  // another process: held, so left alone
    CHECK(fs::exists(path));
    ForkedChild maker([&] { return Temporary::make(path, Temporary::Kind::directory, "t") ? 1 : 0; });
    CHECK(maker.wait() == 0);  // nor made again there
  }  // the holder goes without removing it: as a killed maker leaves it
  ForkedChild dies([&] {
    auto made = Temporary::make(dir.file("x.imgstore-new-1"), Temporary::Kind::file, "t");
    ::_exit(made ? 0 : 1);  // dies holding it
    return 2;
  });
  CHECK(dies.wait() == 0);
  CHECK(imgstore::lmdb::remove_if_abandoned(path));
  // Something of the user's own at a temporary's name (more than a store's files in it) stays.
  fs::create_directories(dir.file("x.imgstore-new-2"));
  { std::FILE* f = std::fopen(dir.file("x.imgstore-new-2/notes.txt").c_str(), "w"); std::fclose(f); }
  imgstore::lmdb::remove_abandoned_temporaries(dir.file("x"));
  CHECK_FALSE(fs::exists(dir.file("x.imgstore-new-1")));
  CHECK(fs::exists(dir.file("x.imgstore-new-2/notes.txt")));
  CHECK_FALSE(fs::exists(path));
}

TEST_CASE("compaction swaps in a copy without free pages beside this process's readers and writers") {
  const TempDir dir("imgstore-compact-");
  const std::string path = dir.file("c.lmdb");
  auto reader = imgstore::open_lmdb_store("r", {"path=" + path, "shape=8x8x3"});
  auto writer = imgstore::open_lmdb_store("w", {"path=" + path});
  fill(*writer, 400);
  writer->begin();
  for (std::int64_t id = 0; id < 400; id += 2) CHECK(writer->erase(id));
  writer->sync();
  auto scan = reader->scan({});  // a snapshot of the old data file, read across the compaction
  REQUIRE(scan->id() == 1);

  const imgstore::Compacted done = imgstore::compact_lmdb_store("c", {"path='" + path + "'", "timeout=1000"});
  CHECK(done.rows == 200);
  CHECK(done.bytes_after < done.bytes_before);
  CHECK_FALSE(fs::exists(path + ".imgstore-compact"));

  CHECK(rows_checked(*scan) == 200);  // the old snapshot, whole
  scan.reset();
  CHECK(reader->count() == 200);  // the next statement: the new file
  CHECK(rows_checked(*reader->scan({})) == 200);
  writer->begin();  // claims the new file, not the old one it had open
  writer->put(Image{1000, 0, pixels_of(1000), {}}, false);
  writer->sync();
  CHECK(entries_on_disk(path) == 201);
  CHECK(rows_checked(*reader->lookup({999, 1000})) == 1);
  CHECK(reader->check(true).empty());
  // Through a symlink: the store it names is compacted, the symlink stays one.
  fs::create_symlink(path, dir.file("link.lmdb"));
  CHECK(imgstore::compact_lmdb_store("c", {"path=" + dir.file("link.lmdb")}).rows == 201);
  CHECK(fs::is_symlink(dir.file("link.lmdb")));
  CHECK(fs::is_directory(path));
  CHECK(rows_checked(*reader->scan({})) == 201);
}

TEST_CASE("a single-file store (format 1) is compacted only when nothing has it open") {
  const TempDir dir("imgstore-compact-");
  const std::string path = dir.file("old.lmdb");
  {  // format 1, as earlier versions made it
    MDB_env* env = nullptr;
    mdb_env_create(&env);
    mdb_env_set_maxdbs(env, 2);
    REQUIRE(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR, 0644) == MDB_SUCCESS);
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env, nullptr, 0, &txn);
    MDB_dbi images = 0;
    MDB_dbi meta = 0;
    mdb_dbi_open(txn, "images", MDB_CREATE, &images);
    mdb_dbi_open(txn, "meta", MDB_CREATE, &meta);
    const auto put_text = [&](const char* k, const char* v) {
      MDB_val key{std::strlen(k), const_cast<char*>(k)};
      MDB_val value{std::strlen(v), const_cast<char*>(v)};
      mdb_put(txn, meta, &key, &value, 0);
    };
    put_text("format", "imgstore-lmdb 1");
    put_text("shape", "8x8x3");
    mdb_txn_commit(txn);
    mdb_env_close(env);
  }
  {
    auto store = imgstore::open_lmdb_store("o", {"path=" + path});
    fill(*store, 300);
    store->begin();
    for (std::int64_t id = 0; id < 300; id += 3) store->erase(id);
    store->sync();
    CHECK_THROWS_WITH_AS(imgstore::compact_lmdb_store("c", {"path=" + path}),
                         doctest::Contains("is open in this process"), Error);
  }
  const imgstore::Compacted done = imgstore::compact_lmdb_store("c", {"path=" + path});
  CHECK(done.rows == 200);
  CHECK(done.bytes_after < done.bytes_before);
  CHECK(fs::is_regular_file(path));
  auto store = imgstore::open_lmdb_store("o", {"path=" + path});
  CHECK(rows_checked(*store->scan({})) == 200);
  store->begin();
  store->put(Image{5000, 0, pixels_of(5000), {}}, false);
  store->sync();
  CHECK(store->count() == 201);
  CHECK(store->check(true).empty());
}
