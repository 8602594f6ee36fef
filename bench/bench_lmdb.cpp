// LMDB: the lmdb virtual table against the raw LMDB C API and a native SQLite table, same data, same run.
//
//   build/bench_lmdb [N] [extension]      (default 100000 images of 32x32x3, build/imgstore.so)
//
// Measures: bulk load (INSERT ... SELECT from a native table, one transaction) vs mdb_put with MDB_APPEND in
// one transaction; a full scan that reads every pixel byte vs the same scan of the native table (and raw
// LMDB cursor); N point lookups in random order vs the native table's and raw mdb_get.

#include <lmdb.h>

#include <cstring>

#include "bench_util.hpp"
#include "lmdb_format.hpp"

namespace {

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
}

// The store's own layout (lmdb_format.hpp): big-endian keys, little-endian labels.
using imgstore::lmdb_format::encode_key;
using imgstore::lmdb_format::encode_label;

// The raw C API doing what the virtual table does, with the same on-disk layout.
struct RawLmdb {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  explicit RawLmdb(const std::string& path, unsigned extra_flags = 0) {
    check(mdb_env_create(&env), "mdb_env_create");
    mdb_env_set_maxdbs(env, 4);
    mdb_env_set_mapsize(env, std::size_t{4} << 30);
    check(mdb_env_open(env, path.c_str(), MDB_NOSUBDIR | MDB_NOTLS | extra_flags, 0664), "mdb_env_open");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    check(mdb_dbi_open(txn, "images", MDB_CREATE, &dbi), "dbi");
    check(mdb_txn_commit(txn), "commit");
  }
  ~RawLmdb() { mdb_env_close(env); }

  void load(const bench::Dataset& data) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    for (std::size_t i = 0; i < data.n; ++i) {
      unsigned char k[8];
      encode_key(static_cast<std::int64_t>(i), k);
      MDB_val key{8, k};
      MDB_val value{8 + data.bytes, nullptr};
      check(mdb_put(txn, dbi, &key, &value, MDB_RESERVE | MDB_APPEND), "put");
      encode_label(data.labels[i], static_cast<unsigned char*>(value.mv_data));
      std::memcpy(static_cast<char*>(value.mv_data) + 8, data.image(i), data.bytes);
    }
    check(mdb_txn_commit(txn), "commit");
  }

  std::uint64_t scan() {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "begin");
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(txn, dbi, &cur), "cursor");
    MDB_val key;
    MDB_val value;
    std::uint64_t sum = 0;
    while (mdb_cursor_get(cur, &key, &value, MDB_NEXT) == MDB_SUCCESS) {
      sum += bench::touch32(static_cast<char*>(value.mv_data) + 8, value.mv_size - 8);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return sum;
  }

  // One read transaction per lookup, as the SQL path takes one snapshot per statement execution.
  std::uint64_t lookups(const std::vector<std::int64_t>& order) {
    std::uint64_t sum = 0;
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn), "begin");
    mdb_txn_reset(txn);
    for (const auto id : order) {
      check(mdb_txn_renew(txn), "renew");
      unsigned char k[8];
      encode_key(id, k);
      MDB_val key{8, k};
      MDB_val value;
      if (mdb_get(txn, dbi, &key, &value) == MDB_SUCCESS) {
        sum += bench::touch(static_cast<char*>(value.mv_data) + 8, value.mv_size - 8);
      }
      mdb_txn_reset(txn);
    }
    mdb_txn_abort(txn);
    return sum;
  }
};

std::string lmdb_path(const std::filesystem::path& dir, const std::string& name, int k) {
  return (dir / (name + std::to_string(k) + ".lmdb")).string();
}

// Bulk load, best of 3 interleaved runs (fresh files each time): this machine's disk writeback is noisy.
// The last run's stores stay: raw2.lmdb and the table t.
bench::Row bulk_load(bench::Db& db, const std::filesystem::path& dir, const bench::Dataset& data) {
  double raw_load = 1e9;
  double sql_load = 1e9;
  for (int k = 0; k < 3; ++k) {
    {
      RawLmdb fresh(lmdb_path(dir, "raw", k));
      raw_load = std::min(raw_load, bench::timed([&] { fresh.load(data); }));
    }
    db.exec("CREATE VIRTUAL TABLE t" + std::to_string(k) + " USING lmdb(path='" + lmdb_path(dir, "vtab", k) + "', shape='32x32x3')");
    sql_load = std::min(sql_load, bench::timed([&] { db.exec("INSERT INTO t" + std::to_string(k) + " SELECT * FROM ref"); }));
    if (k < 2) {
      db.exec("DROP TABLE t" + std::to_string(k));
      std::filesystem::remove(lmdb_path(dir, "raw", k));
      std::filesystem::remove(lmdb_path(dir, "vtab", k));
    }
  }
  db.exec("ALTER TABLE t2 RENAME TO t");
  return {"bulk load (INSERT ... SELECT, 1 txn)", sql_load, raw_load, "raw mdb_put MDB_APPEND", ""};
}

// Full scan touching every pixel byte.
void add_full_scans(bench::Db& db, RawLmdb& raw, std::vector<bench::Row>& rows) {
  std::uint64_t raw_sum = 0;
  const double raw_scan = bench::timed([&] { raw_sum = raw.scan(); });
  std::int64_t native_sum = 0;
  std::int64_t sql_sum = 0;
  const double native_scan = bench::timed([&] { native_sum = db.scalar("SELECT sum(bench_touch(pixels)) FROM ref"); });
  const double sql_scan = bench::timed([&] { sql_sum = db.scalar("SELECT sum(bench_touch(pixels)) FROM t"); });
  if (static_cast<std::uint64_t>(sql_sum) != raw_sum || sql_sum != native_sum) throw std::runtime_error("scan sums differ");
  rows.push_back({"full scan, every byte read", sql_scan, native_scan, "native SQLite table scan", ""});
  rows.push_back({"full scan, every byte read", sql_scan, raw_scan, "raw LMDB cursor", ""});
}

// Random point lookups.
void add_point_lookups(bench::Db& db, RawLmdb& raw, const bench::Dataset& data, std::vector<bench::Row>& rows) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::uint64_t c = 0;
  const double native_get = bench::timed([&] { a = db.lookups("ref", data.lookup_order); });
  const double sql_get = bench::timed([&] { b = db.lookups("t", data.lookup_order); });
  const double raw_get = bench::timed([&] { c = raw.lookups(data.lookup_order); });
  if (a != b || b != c) throw std::runtime_error("lookup sums differ");
  rows.push_back({"point lookups, random order", sql_get, native_get, "native SQLite table lookup", ""});
  rows.push_back({"point lookups, random order", sql_get, raw_get, "raw mdb_get (txn renew each)", ""});
}

double best_raw_load(const std::filesystem::path& dir, const bench::Dataset& data, unsigned flags, const std::string& name) {
  double best = 1e9;
  for (int k = 0; k < 3; ++k) {
    const auto path = lmdb_path(dir, name, k);
    {
      RawLmdb fresh(path, flags);
      best = std::min(best, bench::timed([&] { fresh.load(data); }));
    }
    std::filesystem::remove(path);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 100000;
  const std::string extension = argc > 2 ? argv[2] : "build/imgstore";
  try {
    const auto dir = bench::scratch_dir("lmdb");
    const bench::Dataset data(n, 32 * 32 * 3, 42);
    bench::Db db((dir / "native.db").string(), extension);
    db.load_native("ref", data);

    std::vector<bench::Row> rows;
    rows.push_back(bulk_load(db, dir, data));
    const double raw_load = rows.back().baseline;
    RawLmdb raw(lmdb_path(dir, "raw", 2));
    add_full_scans(db, raw, rows);
    add_point_lookups(db, raw, data, rows);

    // The options the design asked to measure: raw LMDB with MDB_WRITEMAP and with MDB_NOSYNC, best of 3.
    rows.push_back({"raw load with MDB_WRITEMAP", best_raw_load(dir, data, MDB_WRITEMAP, "writemap"), raw_load,
                    "raw load (default flags)", ""});
    rows.push_back({"raw load with MDB_NOSYNC", best_raw_load(dir, data, MDB_NOSYNC, "nosync"), raw_load,
                    "raw load (default flags)", ""});

    bench::print_report("LMDB, 32x32x3", n, rows);
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_lmdb: %s\n", e.what());
    return 1;
  }
  return 0;
}
