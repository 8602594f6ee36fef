#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include <lmdb.h>
#include <unistd.h>

#include "error.hpp"
#include "fork_child.hpp"
#include "lmdb_env.hpp"
#include "lmdb_format.hpp"
#include "lmdb_store.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using imgstore::Error;
using imgstore::ErrorKind;
using imgstore::Image;

namespace {

std::vector<std::uint8_t> pattern(std::size_t n, std::uint8_t seed) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), seed);
  return v;
}

// Whether process `pid` holds a reader slot of `path` with a snapshot in it (a reset slot lists its txnid as
// "-"), asked from a child of this process, which opens the environment of its own as LMDB requires.
bool holds_snapshot(const std::string& path, pid_t pid) {
  ForkedChild lister([&] {
    MDB_env* env = nullptr;
    if (mdb_env_create(&env) != MDB_SUCCESS) return 2;
    if (mdb_env_open(env, path.c_str(), MDB_RDONLY, 0644) != MDB_SUCCESS) return 3;
    struct Found {
      pid_t pid;
      bool snapshot = false;
    } found{pid};
    mdb_reader_list(env, [](const char* line, void* ctx) -> int {
      auto& f = *static_cast<Found*>(ctx);
      int slot_pid = 0;
      char txnid[32] = {};
      if (std::sscanf(line, "%d %*x %31s", &slot_pid, txnid) == 2 && slot_pid == f.pid && txnid[0] != '-') f.snapshot = true;
      return 0;
    }, &found);
    mdb_env_close(env);
    return found.snapshot ? 0 : 1;
  });
  return lister.wait() == 0;
}

}  // namespace

TEST_CASE("keys are big-endian so that LMDB's byte order is id order") {
  unsigned char a[8];
  unsigned char b[8];
  imgstore::lmdb_format::encode_key(255, a);
  imgstore::lmdb_format::encode_key(256, b);
  CHECK(std::memcmp(a, b, 8) < 0);
  CHECK(a[7] == 0xff);
  CHECK(imgstore::lmdb_format::decode_key(b) == 256);
  imgstore::lmdb_format::encode_key(0x0102030405060708, a);
  CHECK(a[0] == 1);
  CHECK(imgstore::lmdb_format::decode_key(a) == 0x0102030405060708);
}

TEST_CASE("labels are 8 bytes little-endian, whatever the host (py-lmdb readers unpack '<q')") {
  unsigned char v[8];
  imgstore::lmdb_format::encode_label(0x0102030405060708, v);
  CHECK(v[0] == 8);
  CHECK(v[7] == 1);
  CHECK(imgstore::lmdb_format::decode_label(v) == 0x0102030405060708);
  imgstore::lmdb_format::encode_label(-2, v);
  CHECK(v[0] == 0xfe);
  CHECK(v[7] == 0xff);
  CHECK(imgstore::lmdb_format::decode_label(v) == -2);
}

TEST_CASE("error kinds map to SQLite result codes") {
  CHECK(imgstore::sqlite_code(ErrorKind::generic) == 1);
  CHECK(imgstore::sqlite_code(ErrorKind::busy) == 5);
  CHECK(imgstore::sqlite_code(ErrorKind::full) == 13);
  CHECK(imgstore::sqlite_code(ErrorKind::constraint) == 19);
  CHECK(imgstore::sqlite_code(ErrorKind::mismatch) == 20);
  CHECK(imgstore::sqlite_code(ErrorKind::readonly) == 8);
}

TEST_CASE("the LMDB store round-trips rows through transactions and savepoints") {
  const TempDir dir;
  const auto path = dir.file("s.lmdb");
  auto store = imgstore::open_lmdb_store("s", {"path=" + path, "shape=2x2x3"});
  const auto a = pattern(12, 1);
  const auto b = pattern(12, 100);

  store->begin();
  store->put(Image{5, 1, a, {}}, false);
  store->put(Image{7, 2, b, {}}, false);
  CHECK_THROWS_AS(store->put(Image{5, 3, b, {}}, false), Error);
  store->savepoint(0);
  CHECK(store->erase(5));
  CHECK(store->count() == 1);
  store->rollback_to(0);
  CHECK(store->count() == 2);
  store->release(0);
  store->sync();

  auto rows = store->scan({});
  REQUIRE(!rows->at_end());
  CHECK(rows->id() == 5);
  CHECK(rows->label() == 1);
  CHECK(std::equal(a.begin(), a.end(), rows->pixels().begin()));
  rows->next();
  CHECK(rows->id() == 7);
  rows->next();
  CHECK(rows->at_end());
  rows.reset();
  CHECK(store->max_id() == 7);

  store->begin();
  CHECK(store->set_label(7, 9));
  CHECK_FALSE(store->set_label(8, 9));
  store->rollback();
  auto seven = store->lookup({6, 7});
  REQUIRE(!seven->at_end());
  CHECK(seven->label() == 2);
}

TEST_CASE("one environment per file per process, whatever path spells it") {
  const TempDir dir;
  const auto path = dir.file("r.lmdb");
  const auto before = imgstore::lmdb::open_environments();
  auto first = imgstore::open_lmdb_store("a", {"path=" + path, "shape=1x1x1"});
  fs::create_symlink(path, dir.file("link.lmdb"));
  auto second = imgstore::open_lmdb_store("b", {"path=" + dir.file("link.lmdb")});
  auto third = imgstore::open_lmdb_store("c", {"path='" + dir.path.string() + "/./r.lmdb'"});
  CHECK(imgstore::lmdb::open_environments() == before + 1);
  first.reset();
  second.reset();
  third.reset();
  CHECK(imgstore::lmdb::open_environments() == before);
}

TEST_CASE("a second writer in the same process gets a clear busy error instead of a deadlock") {
  const TempDir dir;
  const auto path = dir.file("w.lmdb");
  auto first = imgstore::open_lmdb_store("a", {"path=" + path, "shape=1x1x1"});
  auto second = imgstore::open_lmdb_store("b", {"path=" + path});
  first->begin();
  try {
    second->begin();
    FAIL("second writer was let in");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::busy);
    CHECK(std::string(e.what()).find("table b:") == 0);
  }
  first->rollback();
  second->begin();
  second->rollback();
}

TEST_CASE("LMDB cursors walk ranges and id lists on the snapshot and inside a write transaction") {
  const TempDir dir;
  auto store = imgstore::open_lmdb_store("s", {"path=" + dir.file("walk.lmdb"), "shape=1x1x1"});
  const auto px = pattern(1, 0);
  store->begin();
  for (const std::int64_t id : {1, 3, 5, 7, 9}) store->put(Image{id, id * 10, px, {}}, false);
  store->sync();

  const auto ids = [](std::unique_ptr<imgstore::Cursor> c) {
    std::vector<std::int64_t> seen;
    for (; !c->at_end(); c->next()) {
      CHECK(c->label() == c->id() * 10);
      seen.push_back(c->id());
    }
    return seen;
  };
  for (int in_txn = 0; in_txn < 2; ++in_txn) {
    CAPTURE(in_txn);
    if (in_txn != 0) store->begin();
    CHECK(ids(store->scan({})) == std::vector<std::int64_t>{1, 3, 5, 7, 9});
    CHECK(ids(store->scan({2, 7})) == std::vector<std::int64_t>{3, 5, 7});
    CHECK(ids(store->scan({9, INT64_MAX})) == std::vector<std::int64_t>{9});
    CHECK(ids(store->scan({10, INT64_MAX})).empty());
    CHECK(ids(store->lookup({0, 3, 4, 9, 11})) == std::vector<std::int64_t>{3, 9});
    if (in_txn != 0) store->rollback();
  }

  // A scan in a write transaction finds its place again by id after the rows under it change.
  store->begin();
  auto rows = store->scan({});
  CHECK(rows->id() == 1);
  store->put(Image{2, 20, px, {}}, false);
  CHECK(store->erase(3));
  rows->next();
  CHECK(rows->id() == 2);
  rows->next();
  CHECK(rows->id() == 5);
  rows.reset();
  store->rollback();
}

TEST_CASE("a forked child that drops the parent's LMDB objects leaves them alone: the parent's snapshot stays") {
  const TempDir dir;
  const auto path = dir.file("fork.lmdb");
  auto store = imgstore::open_lmdb_store("f", {"path=" + path, "shape=1x1x1"});
  store->begin();
  for (const std::int64_t id : {1, 2, 3}) store->put(Image{id, id, pattern(1, 0), {}}, false);
  store->sync();
  auto cursor = store->scan({});  // a read snapshot: this process's reader slot
  REQUIRE(holds_snapshot(path, ::getpid()));
  // The child's copies of the cursor, the table and the environment go: LMDB forbids using them after fork, so
  // nothing of them may be reset, aborted or closed there (lmdb_env.hpp, EnvClose).
  ForkedChild dropper([&] {
    cursor.reset();
    store.reset();
    return imgstore::lmdb::open_environments() == 0 ? 0 : 1;
  });
  CHECK(dropper.wait() == 0);
  CHECK(holds_snapshot(path, ::getpid()));
  CHECK(cursor->id() == 1);
}
