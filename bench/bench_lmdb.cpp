// LMDB: the lmdb virtual table against the raw LMDB C API and a native SQLite table, same data, same run.
//
//   build/bench_lmdb [N] [extension]      (default 100000 images of 32x32x3, build/imgstore.so)
//
// Measures: bulk load (INSERT ... SELECT from a native table, one transaction) vs mdb_put with MDB_APPEND in
// one transaction; a full scan that reads every pixel byte vs the same scan of the native table (and raw
// LMDB cursor); N point lookups in random order vs the native table's and raw mdb_get.

#include <lmdb.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "bench_system.hpp"
#include "bench_util.hpp"
#include "lmdb_format.hpp"
#include "raw_baselines.hpp"

namespace {

void check(int rc, const char* what) {
  if (rc != MDB_SUCCESS) throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
}

// The store's own layout (lmdb_format.hpp, format 2): big-endian keys; values the label, the checksum, the pixels.
namespace lf = imgstore::lmdb_format;
using lf::encode_key;
constexpr lf::Version kFormat = lf::Version::v2;

// The pixels of a value, its checksum checked first, as the table does by default (verify=1).
std::span<const std::uint8_t> checked_pixels(const MDB_val& key, const MDB_val& value) {
  const auto v = lf::decode_value(kFormat, {static_cast<const std::uint8_t*>(value.mv_data), value.mv_size},
                                  value.mv_size - lf::header_bytes(kFormat));
  const std::int64_t id = lf::decode_key(static_cast<const unsigned char*>(key.mv_data));
  if (!v || lf::expected_checksum(id, *v) != v->checksum) throw std::runtime_error("raw: image " + std::to_string(id) + " is damaged");
  return v->pixels;
}

// The raw C API doing what the virtual table does, with the same on-disk layout (an environment directory).
struct RawLmdb {
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  explicit RawLmdb(const std::string& path, unsigned extra_flags = 0) {
    std::filesystem::create_directories(path);
    check(mdb_env_create(&env), "mdb_env_create");
    mdb_env_set_mapsize(env, std::size_t{4} << 30);
    check(mdb_env_open(env, path.c_str(), MDB_NOTLS | extra_flags, 0664), "mdb_env_open");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env, nullptr, 0, &txn), "begin");
    check(mdb_dbi_open(txn, nullptr, 0, &dbi), "dbi");
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
      MDB_val value{lf::value_bytes(kFormat, data.bytes), nullptr};
      check(mdb_put(txn, dbi, &key, &value, MDB_RESERVE | MDB_APPEND), "put");
      lf::encode_value(kFormat, static_cast<std::int64_t>(i), data.labels[i],
                       {data.image(i), data.bytes},
                       {static_cast<std::uint8_t*>(value.mv_data), value.mv_size});
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
    int rc;
    while ((rc = mdb_cursor_get(cur, &key, &value, MDB_NEXT)) == MDB_SUCCESS) {
      const auto pixels = checked_pixels(key, value);
      sum += bench::touch32(pixels.data(), pixels.size());
    }
    if (rc != MDB_NOTFOUND) check(rc, "mdb_cursor_get");
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
        const auto pixels = checked_pixels(key, value);
        sum += bench::touch(pixels.data(), pixels.size());
      }
      mdb_txn_reset(txn);
    }
    mdb_txn_abort(txn);
    return sum;
  }
};

// RssAnon (heap and buffers, not the mapped file) over a full scan: sampled every 4,096 rows by a function of
// the query, so memory taken and given back inside the scan shows too; beside the scan's peak RSS (VmRSS,
// sampled alike), which counts the store's mapped pages.
struct MemoryRow {
  std::string what;
  std::int64_t before_kib = 0, growth_kib = 0, peak_rss_kib = 0;
};

std::int64_t g_rss_anon_max = 0;
std::int64_t g_rss_max = 0;

void sample_memory() {
  g_rss_anon_max = std::max(g_rss_anon_max, bench::status_kib("RssAnon"));
  g_rss_max = std::max(g_rss_max, bench::status_kib("VmRSS"));
}

// The random batches of sql/random_batch.sql: one read transaction per batch, an mdb_get per id.
std::uint64_t raw_batches(RawLmdb& raw, const std::vector<std::vector<std::int64_t>>& batches) {
  std::uint64_t sum = 0;
  for (const auto& batch : batches) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(raw.env, nullptr, MDB_RDONLY, &txn), "begin");
    for (const auto id : batch) {
      unsigned char k[8];
      encode_key(id, k);
      MDB_val key{8, k};
      MDB_val value;
      if (mdb_get(txn, raw.dbi, &key, &value) == MDB_SUCCESS) {
        const auto pixels = checked_pixels(key, value);
        sum += bench::touch32(pixels.data(), pixels.size());
      }
    }
    mdb_txn_abort(txn);
  }
  return sum;
}

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
      std::filesystem::remove_all(lmdb_path(dir, "raw", k));
      std::filesystem::remove_all(lmdb_path(dir, "vtab", k));
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

// What checking each image's checksum costs a warm full scan: the same store as a table with verify=1 (the
// default) and with verify=0, best of 3 each, interleaved.
void add_verify_cost(bench::Db& db, const std::string& path, std::vector<bench::Row>& rows) {
  db.exec("CREATE VIRTUAL TABLE tv0 USING lmdb(path='" + path + "', verify=0)");
  double checked = 1e9, unchecked = 1e9;
  std::int64_t a = 0, b = 0;
  for (int k = 0; k < 3; ++k) {
    checked = std::min(checked, bench::timed([&] { a = db.scalar("SELECT sum(bench_touch(pixels)) FROM t"); }));
    unchecked = std::min(unchecked, bench::timed([&] { b = db.scalar("SELECT sum(bench_touch(pixels)) FROM tv0"); }));
  }
  if (a != b) throw std::runtime_error("verify=0 and verify=1 scan sums differ");
  rows.push_back({"full scan, verify=1 (checksums checked), best of 3", checked, unchecked, "the same scan, verify=0, best of 3", ""});
  db.exec("DROP TABLE tv0");
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

// A batch through SQL: one statement, `id IN (the batch)`, the ids given as JSON (as a data loader does).
std::uint64_t sql_batches(bench::Db& db, const std::string& table, const std::vector<std::vector<std::int64_t>>& batches) {
  sqlite3_stmt* stmt = nullptr;
  const std::string sql = "SELECT pixels FROM " + table + " WHERE id IN (SELECT value FROM json_each(?1))";
  if (sqlite3_prepare_v2(db.get(), sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db.get()));
  std::uint64_t sum = 0;
  std::string list;
  for (const auto& batch : batches) {
    list.assign(1, '[');
    for (const auto id : batch) {
      if (list.size() > 1) list += ',';
      list += std::to_string(id);
    }
    list += ']';
    sqlite3_bind_text(stmt, 1, list.c_str(), static_cast<int>(list.size()), SQLITE_STATIC);
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      sum += bench::touch32(sqlite3_column_blob(stmt, 0), static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
    }
    sqlite3_reset(stmt);
  }
  sqlite3_finalize(stmt);
  return sum;
}

// Batches of 256 random ids (the ML access pattern), warm, best of 3 each way.
void add_random_batches(bench::Db& db, RawLmdb& raw, std::size_t n, std::vector<bench::Row>& rows) {
  const auto batches = raw::random_batches(static_cast<std::int64_t>(n), 256);
  std::size_t images = 0;
  for (const auto& b : batches) images += b.size();
  double sql = 1e9, native = 1e9, raw_time = 1e9;
  std::uint64_t a = 0, b = 0, c = 0;
  for (int k = 0; k < 3; ++k) {
    sql = std::min(sql, bench::timed([&] { a = sql_batches(db, "t", batches); }));
    native = std::min(native, bench::timed([&] { b = sql_batches(db, "ref", batches); }));
    raw_time = std::min(raw_time, bench::timed([&] { c = raw_batches(raw, batches); }));
  }
  if (a != b || b != c) throw std::runtime_error("random batch sums differ");
  char note[96];
  std::snprintf(note, sizeof note, "(best of 3; %zu images read, %.0f images/s through SQL)", images, static_cast<double>(images) / sql);
  rows.push_back({"random batches of 256, id IN (...)", sql, native, "native SQLite table, id IN (...)", note});
  rows.push_back({"random batches of 256, id IN (...)", sql, raw_time, "raw mdb_get, a txn per batch", note});
}

// Cold full scans: each path on a freshly opened store (drop_caches leaves pages that a process still maps,
// so a store scanned before would stay warm), right after its own drop of the page cache, best of 3. The
// Needs every table on the file closed.
void add_cold_scans(bench::Db& db, const std::string& sql_path, const std::string& raw_path, std::vector<bench::Row>& rows) {
  double sql = 1e9, raw_time = 1e9;
  bool dropped = true;
  for (int k = 0; k < 3; ++k) {
    db.exec("CREATE VIRTUAL TABLE tc USING lmdb(path='" + sql_path + "')");
    dropped = bench::drop_page_cache() && dropped;
    std::int64_t a = 0;
    sql = std::min(sql, bench::timed([&] { a = db.scalar("SELECT sum(bench_touch(pixels)) FROM tc"); }));
    db.exec("DROP TABLE tc");
    RawLmdb raw(raw_path);
    dropped = bench::drop_page_cache() && dropped;
    std::uint64_t b = 0;
    raw_time = std::min(raw_time, bench::timed([&] { b = raw.scan(); }));
    if (static_cast<std::uint64_t>(a) != b) throw std::runtime_error("cold scan sums differ");
  }
  rows.push_back({"full scan, cold (page cache dropped)", sql, raw_time, "raw LMDB cursor, cold",
                  dropped ? "(best of 3, each on a freshly opened store)" : "(best of 3; page cache NOT dropped: needs root)"});
}

// The store with threads=N (the cores) beside threads=1: a bulk load into a new store and a full scan.
void add_threads(bench::Db& db, const std::filesystem::path& dir, RawLmdb& raw, double raw_load, std::vector<bench::Row>& rows) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = "threads=" + std::to_string(cores);
  db.exec("CREATE VIRTUAL TABLE tn USING lmdb(path='" + lmdb_path(dir, "threads", 0) + "', shape='32x32x3', " + threads + ")");
  const double load = bench::timed([&] { db.exec("INSERT INTO tn SELECT * FROM ref"); });
  // Best of 3 each, interleaved: threads=1 (table t) and threads=N scans of the same images, raw and native.
  double native_scan = 1e9, scan = 1e9, scan1 = 1e9, raw_scan = 1e9;
  std::int64_t a = 0, b = 0, d = 0;
  std::uint64_t c = 0;
  for (int k = 0; k < 3; ++k) {
    scan1 = std::min(scan1, bench::timed([&] { d = db.scalar("SELECT sum(bench_touch(pixels)) FROM t"); }));
    scan = std::min(scan, bench::timed([&] { a = db.scalar("SELECT sum(bench_touch(pixels)) FROM tn"); }));
    native_scan = std::min(native_scan, bench::timed([&] { b = db.scalar("SELECT sum(bench_touch(pixels)) FROM ref"); }));
    raw_scan = std::min(raw_scan, bench::timed([&] { c = raw.scan(); }));
  }
  if (a != b || a != d || static_cast<std::uint64_t>(a) != c) throw std::runtime_error("threads=N scan sums differ");
  rows.push_back({"bulk load, " + threads, load, raw_load, "raw mdb_put MDB_APPEND (1 thread)", ""});
  for (const auto& [name, t] : {std::pair{std::string("threads=1"), scan1}, std::pair{threads, scan}}) {
    rows.push_back({"full scan, " + name + ", best of 3", t, native_scan, "native SQLite table scan, best of 3", ""});
    rows.push_back({"full scan, " + name + ", best of 3", t, raw_scan, "raw LMDB cursor (1 thread), best of 3", ""});
  }
  db.exec("DROP TABLE tn");
}

MemoryRow scan_memory(bench::Db& db, const std::string& table, const std::string& what) {
  const std::int64_t before = bench::status_kib("RssAnon");
  g_rss_anon_max = before;
  g_rss_max = 0;
  db.scalar("SELECT sum(bench_touch(pixels) + bench_rss_sample()) FROM " + table);
  sample_memory();
  return {what, before, g_rss_anon_max - before, g_rss_max};
}

void print_memory(const std::vector<MemoryRow>& rows, std::size_t n) {
  std::printf("\nMemory over a full scan of %zu images (KiB from /proc/self/status; target: RssAnon grows by at most 16 MiB):\n\n", n);
  std::printf("| scan | RssAnon before | RssAnon growth (peak during the scan) | peak RSS during the scan (VmRSS, mapped pages too) |\n");
  std::printf("|---|---:|---:|---:|\n");
  for (const auto& r : rows) {
    std::printf("| %s | %lld KiB | %lld KiB | %lld KiB |\n", r.what.c_str(), static_cast<long long>(r.before_kib),
                static_cast<long long>(r.growth_kib), static_cast<long long>(r.peak_rss_kib));
  }
  std::fflush(stdout);
}

void register_rss_sample(bench::Db& db) {
  sqlite3_create_function(db.get(), "bench_rss_sample", 0, SQLITE_UTF8, nullptr,
                          [](sqlite3_context* ctx, int, sqlite3_value**) {
                            static unsigned calls = 0;
                            if (++calls % 4096 == 0) sample_memory();
                            sqlite3_result_int(ctx, 0);
                          },
                          nullptr, nullptr);
}

// One scan's memory in a fresh process (this program again, with --scan-memory), so that nothing an earlier
// step allocated hides the growth: it opens `table` (made by `create`, if given) in `db_path`, drops the page
// cache if `cold`, and prints the row.
MemoryRow memory_in_child(const std::string& extension, const std::string& db_path, const std::string& create, const std::string& table,
                          const std::string& what, bool cold) {
  const auto quote = [](const std::string& s) {
    std::string q = "'";
    for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  const std::string command = quote(std::filesystem::read_symlink("/proc/self/exe").string()) + " --scan-memory " + quote(extension) + " " +
                              quote(db_path) + " " + quote(create) + " " + quote(table) + " " + quote(what) + (cold ? " cold" : " warm");
  FILE* child = ::popen(command.c_str(), "r");
  if (child == nullptr) throw std::runtime_error("cannot run " + command);
  long long before = -1, growth = -1, peak = -1;
  const int got = std::fscanf(child, "%lld %lld %lld", &before, &growth, &peak);
  if (::pclose(child) != 0 || got != 3) throw std::runtime_error("the memory scan failed: " + command);
  return {what, before, growth, peak};
}

int scan_memory_main(char** argv) {
  bench::Db db(argv[1], argv[0]);
  register_rss_sample(db);
  if (*argv[2] != '\0') db.exec(argv[2]);
  if (std::string(argv[5]) == "cold") bench::drop_page_cache();
  const MemoryRow row = scan_memory(db, argv[3], argv[4]);
  std::printf("%lld %lld %lld\n", static_cast<long long>(row.before_kib), static_cast<long long>(row.growth_kib),
              static_cast<long long>(row.peak_rss_kib));
  return 0;
}

std::vector<MemoryRow> add_memory(const std::string& extension, const std::filesystem::path& dir) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string db_path = (dir / "native.db").string();
  const auto lmdb_table = [&](unsigned threads) {
    return "CREATE VIRTUAL TABLE temp.m USING lmdb(path='" + lmdb_path(dir, "vtab", 2) + "', threads=" + std::to_string(threads) + ")";
  };
  std::vector<MemoryRow> rows;
  rows.push_back(memory_in_child(extension, db_path, lmdb_table(1), "m", "lmdb, threads=1, cold", true));
  rows.push_back(memory_in_child(extension, db_path, lmdb_table(1), "m", "lmdb, threads=1, warm", false));
  rows.push_back(memory_in_child(extension, db_path, lmdb_table(cores), "m", "lmdb, threads=" + std::to_string(cores) + ", warm", false));
  rows.push_back(memory_in_child(extension, db_path, "", "ref", "native SQLite table, warm", false));
  return rows;
}

double best_raw_load(const std::filesystem::path& dir, const bench::Dataset& data, unsigned flags, const std::string& name) {
  double best = 1e9;
  for (int k = 0; k < 3; ++k) {
    const auto path = lmdb_path(dir, name, k);
    {
      RawLmdb fresh(path, flags);
      best = std::min(best, bench::timed([&] { fresh.load(data); }));
    }
    std::filesystem::remove_all(path);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 8 && std::string(argv[1]) == "--scan-memory") {
    try {
      return scan_memory_main(argv + 2);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bench_lmdb --scan-memory: %s\n", e.what());
      return 1;
    }
  }
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
    {
      RawLmdb raw(lmdb_path(dir, "raw", 2));
      add_full_scans(db, raw, rows);
      add_verify_cost(db, lmdb_path(dir, "vtab", 2), rows);
      add_point_lookups(db, raw, data, rows);
      add_random_batches(db, raw, n, rows);
      add_threads(db, dir, raw, raw_load, rows);
    }
    db.exec("DROP TABLE t");  // the cold scans open the stores afresh
    add_cold_scans(db, lmdb_path(dir, "vtab", 2), lmdb_path(dir, "raw", 2), rows);
    const auto memory = add_memory(extension, dir);

    // The options the design asked to measure: raw LMDB with MDB_WRITEMAP and with MDB_NOSYNC, best of 3.
    rows.push_back({"raw load with MDB_WRITEMAP", best_raw_load(dir, data, MDB_WRITEMAP, "writemap"), raw_load,
                    "raw load (default flags)", ""});
    rows.push_back({"raw load with MDB_NOSYNC", best_raw_load(dir, data, MDB_NOSYNC, "nosync"), raw_load,
                    "raw load (default flags)", ""});

    bench::print_report("LMDB, 32x32x3", n, rows);
    print_memory(memory, n);
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_lmdb: %s\n", e.what());
    return 1;
  }
  return 0;
}
