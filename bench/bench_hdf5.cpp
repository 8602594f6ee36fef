// HDF5: the hdf5 virtual table against raw HDF5 C calls doing the same work, in the same run.
//
//   build/bench/bench_hdf5 [N] [extension]      (default 100000 images of 32x32x3)
//
// Bulk load: INSERT ... SELECT from a native table (one transaction) vs one H5Dwrite of the whole array plus
// its labels and ids, same chunking, flushed and fsynced. Full scan: every pixel byte read vs H5Dread in
// blocks of the same size. Point lookups in random order: SQL by id vs raw H5Dread of one row, through the
// same chunk cache settings. File sizes with and without gzip.
//
// Then (issue 17) each measure with threads=1 and threads=2 side by side, as ratios to the raw single-threaded
// C loop and to a native SQLite table in the same run: uncompressed (random bytes) and gzip:4 (smooth synthetic
// images, which compress) loads and scans, point lookups (a loop of WHERE id = ?, a join from a native table of
// ids, IN lists of 256), a cold full scan (page cache dropped before each side: needs root), and the anonymous
// memory (RssAnon) a full scan adds, beside its peak RSS.

#include <hdf5.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "bench_system.hpp"
#include "bench_util.hpp"
#include "hdf5_format.hpp"

namespace {

namespace fmt = imgstore::hdf5;

constexpr hsize_t kImageBytes = 32 * 32 * 3;
constexpr hsize_t kChunk = fmt::default_chunk_rows(kImageBytes);  // the extension's default, same layout


void check(herr_t rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("HDF5: ") + what);
}

hid_t access_plist() {
  const hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, fmt::kChunkCache.slots, fmt::kChunkCache.bytes, fmt::kChunkCache.w0);
  return dapl;
}

// Writes the whole data set with one H5Dwrite per dataset.
void raw_load(const std::string& path, const bench::Dataset& data, int gzip) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t n = data.n;
  const hsize_t dims[4] = {n, 32, 32, 3};
  const hsize_t max[4] = {H5S_UNLIMITED, 32, 32, 3};
  const hsize_t chunk[4] = {kChunk, 32, 32, 3};
  const hid_t space = H5Screate_simple(4, dims, max);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 4, chunk);
  if (gzip > 0) H5Pset_deflate(dcpl, static_cast<unsigned>(gzip));
  const hid_t dapl = access_plist();
  const hid_t images = H5Dcreate2(file, fmt::kImages, H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, dapl);
  check(H5Dwrite(images, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.pixels.data()), "write images");
  const hsize_t one[1] = {n};
  const hsize_t one_max[1] = {H5S_UNLIMITED};
  const hsize_t one_chunk[1] = {fmt::row_chunk_rows(kChunk)};
  const hid_t space1 = H5Screate_simple(1, one, one_max);
  const hid_t dcpl1 = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl1, 1, one_chunk);
  const hid_t labels = H5Dcreate2(file, fmt::kLabels, H5T_STD_I64LE, space1, H5P_DEFAULT, dcpl1, H5P_DEFAULT);
  check(H5Dwrite(labels, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.labels.data()), "write labels");
  std::vector<std::int64_t> ids(data.n);
  for (std::size_t i = 0; i < data.n; ++i) ids[i] = static_cast<std::int64_t>(i);
  const hid_t idset = H5Dcreate2(file, fmt::kIds, H5T_STD_I64LE, space1, H5P_DEFAULT, dcpl1, H5P_DEFAULT);
  check(H5Dwrite(idset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids.data()), "write ids");
  H5Fflush(file, H5F_SCOPE_GLOBAL);
  void* handle = nullptr;
  H5Fget_vfd_handle(file, H5P_DEFAULT, &handle);
  ::fsync(*static_cast<int*>(handle));
  for (hid_t id : {images, labels, idset}) H5Dclose(id);
  for (hid_t id : {space, space1}) H5Sclose(id);
  for (hid_t id : {dcpl, dcpl1, dapl}) H5Pclose(id);
  H5Fclose(file);
}

struct RawReader {
  hid_t file;
  hid_t images;
  hid_t dapl;
  explicit RawReader(const std::string& path) {
    file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    dapl = access_plist();
    images = H5Dopen2(file, "images", dapl);
  }
  ~RawReader() {
    H5Dclose(images);
    H5Pclose(dapl);
    H5Fclose(file);
  }
  void read(hsize_t row, hsize_t n, std::uint8_t* out) const {
    const hsize_t start[4] = {row, 0, 0, 0};
    const hsize_t count[4] = {n, 32, 32, 3};
    const hid_t fspace = H5Dget_space(images);
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
    const hid_t mspace = H5Screate_simple(4, count, nullptr);
    check(H5Dread(images, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, out), "read");
    H5Sclose(mspace);
    H5Sclose(fspace);
  }
};

// Bulk load, best of 3: each SQL load into a fresh file, the raw file written anew each time.
bench::Row bulk_load(bench::Db& db, const std::filesystem::path& dir, const bench::Dataset& data,
                     const std::string& raw_path) {
  double raw_time = 1e9;
  double sql_time = 1e9;
  for (int k = 0; k < 3; ++k) {
    const auto sql_path = (dir / ("vtab" + std::to_string(k) + ".h5")).string();
    std::filesystem::remove(raw_path);
    raw_time = std::min(raw_time, bench::timed([&] { raw_load(raw_path, data, 0); }));
    if (k > 0) db.exec("DROP TABLE t");
    db.exec("CREATE VIRTUAL TABLE t USING hdf5(path='" + sql_path + "', shape='32x32x3')");
    sql_time = std::min(sql_time, bench::timed([&] { db.exec("INSERT INTO t SELECT * FROM ref"); }));
  }
  return {"bulk load (INSERT ... SELECT, 1 txn)", sql_time, raw_time, "one raw H5Dwrite per dataset", "(best of 3)"};
}

// Full scan touching every byte: the raw reader uses the same 4 MiB blocks of whole chunks.
bench::Row full_scan(bench::Db& db, const RawReader& raw, std::size_t n) {
  std::uint64_t raw_sum = 0;
  const hsize_t block = fmt::block_rows(kChunk, kImageBytes, fmt::kScanBlockBytes);
  std::vector<std::uint8_t> buffer(block * 3072);
  const double raw_scan = bench::timed([&] {
    for (hsize_t row = 0; row < n; row += block) {
      const hsize_t count = std::min<hsize_t>(block, n - row);
      raw.read(row, count, buffer.data());
      for (hsize_t i = 0; i < count; ++i) raw_sum += bench::touch32(buffer.data() + i * 3072, 3072);
    }
  });
  std::int64_t sql_sum = 0;
  const long anon_before = bench::status_kib("RssAnon");
  const double sql_scan = bench::timed([&] { sql_sum = db.scalar("SELECT sum(bench_touch(pixels)) FROM t"); });
  const long anon_growth = bench::status_kib("RssAnon") - anon_before;
  if (static_cast<std::uint64_t>(sql_sum) != raw_sum) throw std::runtime_error("scan sums differ");
  return {"full scan, every byte read", sql_scan, raw_scan, "raw H5Dread in 4 MiB blocks",
          "(the process's first SQL scan: RssAnon +" + std::to_string(anon_growth / 1024) + " MB)"};
}

// Random point lookups.
bench::Row point_lookups(bench::Db& db, const RawReader& raw, const bench::Dataset& data) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::vector<std::uint8_t> one(3072);
  const double raw_get = bench::timed([&] {
    for (const auto id : data.lookup_order) {
      raw.read(static_cast<hsize_t>(id), 1, one.data());
      a += bench::touch(one.data(), one.size());
    }
  });
  const double sql_get = bench::timed([&] { b = db.lookups("t", data.lookup_order); });
  if (a != b) throw std::runtime_error("lookup sums differ");
  return {"point lookups, random order", sql_get, raw_get, "raw H5Dread of one row", ""};
}

// Sizes: random bytes do not compress; smooth synthetic images a little; Fashion-MNIST a lot.
void print_file_sizes(bench::Db& db, const std::filesystem::path& dir, std::size_t n) {
  std::printf("\nFile sizes (bytes, %zu images):\n\n| data | none | gzip:4 |\n|---|---:|---:|\n", n);
  const auto size_of = [&](const std::string& source, const std::string& shape, const std::string& compression, const std::string& name) {
    const auto path = (dir / (name + ".h5")).string();
    db.exec("CREATE VIRTUAL TABLE " + name + " USING hdf5(path='" + path + "', shape='" + shape + "', compression='" + compression + "')");
    db.exec("INSERT INTO " + name + " SELECT * FROM " + source);
    return db.scalar("SELECT file_bytes('" + path + "')");
  };
  const std::string count = std::to_string(n);
  const std::string fm = "/usr/share/datasets/fashion-mnist/";
  const std::string fashion = "(SELECT * FROM idx('" + fm + "train-images-idx3-ubyte.gz', '" + fm +
                              "train-labels-idx1-ubyte.gz') LIMIT " + count + ")";
  std::printf("| random bytes 32x32x3 | %lld | %lld |\n", static_cast<long long>(size_of("ref", "32x32x3", "none", "s1")),
              static_cast<long long>(size_of("ref", "32x32x3", "gzip:4", "s2")));
  const std::string smooth = "synthetic(" + count + ", '32x32x3', 1, 'smooth')";
  std::printf("| smooth synthetic 32x32x3 | %lld | %lld |\n", static_cast<long long>(size_of(smooth, "32x32x3", "none", "s3")),
              static_cast<long long>(size_of(smooth, "32x32x3", "gzip:4", "s4")));
  std::printf("| Fashion-MNIST 28x28x1 (first %s, at most 60,000) | %lld | %lld |\n", count.c_str(),
              static_cast<long long>(size_of(fashion, "28x28x1", "none", "s5")),
              static_cast<long long>(size_of(fashion, "28x28x1", "gzip:4", "s6")));
}

// --- Issue 17: threads=1 and threads=2 side by side, against the raw C loop and a native table.

// Resets VmHWM to the current RSS (Linux 4.0+), so a peak is the peak of one step.
void reset_peak() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
}


struct Side {
  double t1 = 0;      // threads=1
  double t2 = 0;      // threads=2
  double raw = 0;     // the raw single-threaded C loop (0: none)
  double native = 0;  // a native SQLite table (0: none)
};

void print_sides(std::size_t n, const std::vector<std::pair<std::string, Side>>& rows) {
  std::printf("\n### HDF5 threads=1 and threads=2, against raw C (one thread) and a native table (%zu images)\n\n", n);
  std::printf("| measure | threads=1 | threads=2 | raw C | native | t1/raw | t2/raw | t1/native | t2/native | t1/t2 |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  const auto ratio = [](double a, double b) {
    char buf[32];
    if (a <= 0 || b <= 0) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.2fx", a / b);
    return std::string(buf);
  };
  const auto secs = [](double t) {
    char buf[32];
    if (t <= 0) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.3f s", t);
    return std::string(buf);
  };
  for (const auto& [name, r] : rows) {
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name.c_str(), secs(r.t1).c_str(), secs(r.t2).c_str(),
                secs(r.raw).c_str(), secs(r.native).c_str(), ratio(r.t1, r.raw).c_str(), ratio(r.t2, r.raw).c_str(),
                ratio(r.t1, r.native).c_str(), ratio(r.t2, r.native).c_str(), ratio(r.t1, r.t2).c_str());
  }
  std::fflush(stdout);
}

// Every byte of `path`'s images read raw, in the scan's 4 MiB blocks.
double raw_scan(const std::string& path, std::size_t n, std::uint64_t& sum) {
  const RawReader raw(path);
  const hsize_t block = fmt::block_rows(kChunk, kImageBytes, fmt::kScanBlockBytes);
  std::vector<std::uint8_t> buffer(block * kImageBytes);
  sum = 0;
  return bench::timed([&] {
    for (hsize_t row = 0; row < n; row += block) {
      const hsize_t count = std::min<hsize_t>(block, n - row);
      raw.read(row, count, buffer.data());
      for (hsize_t i = 0; i < count; ++i) sum += bench::touch32(buffer.data() + i * kImageBytes, kImageBytes);
    }
  });
}

struct Memory {
  std::string scan;
  long anon_growth_kb;
  long rss_before_kb;
  long peak_kb;
};

// A SQL full scan of `table`, its sum checked; records RssAnon growth and peak RSS.
double sql_scan(bench::Db& db, const std::string& table, std::uint64_t expected, std::vector<Memory>* memory,
                const std::string& name) {
  reset_peak();
  const long before = bench::status_kib("RssAnon");
  const long rss_before = bench::status_kib("VmRSS");
  std::int64_t sum = 0;
  const double t = bench::timed([&] { sum = db.scalar("SELECT sum(bench_touch(pixels)) FROM " + table); });
  if (memory != nullptr) memory->push_back({name, bench::status_kib("RssAnon") - before, rss_before, bench::status_kib("VmHWM")});
  if (static_cast<std::uint64_t>(sum) != expected) throw std::runtime_error(table + ": scan sums differ");
  return t;
}

// Lookups of every id in random order: a WHERE id = ? loop, a join from a native id table, IN lists of 256.
void lookups(bench::Db& db, const bench::Dataset& data, const std::string& table, double& loop, double& join,
             double& in_lists, std::uint64_t expected) {
  std::uint64_t sum = 0;
  loop = bench::timed([&] { sum = db.lookups(table, data.lookup_order); });
  if (sum != expected) throw std::runtime_error(table + ": lookup sums differ");
  std::int64_t joined = 0;
  join = bench::timed([&] {
    joined = db.scalar("SELECT sum(bench_touch(t.pixels)) FROM lookup_ids CROSS JOIN " + table + " AS t ON t.id = lookup_ids.id");
  });
  std::int64_t in_sum = 0;
  in_lists = bench::timed([&] {
    for (std::size_t i = 0; i < data.n; i += 256) {
      std::string list;
      for (std::size_t k = i; k < std::min(data.n, i + 256); ++k) {
        if (k > i) list.push_back(',');
        list.append(std::to_string(data.lookup_order[k]));
      }
      std::string sql = "SELECT sum(bench_touch(pixels)) FROM ";
      sql.append(table).append(" WHERE id IN (").append(list).append(")");
      in_sum += db.scalar(sql);
    }
  });
  if (joined != in_sum) throw std::runtime_error(table + ": join and IN sums differ");
}

// The smooth synthetic images (which compress) for the gzip rows, in SQL and in memory for the raw loop.
bench::Dataset smooth_images(bench::Db& db, std::size_t n) {
  db.exec("CREATE TABLE smooth AS SELECT * FROM synthetic(" + std::to_string(n) + ", '32x32x3', 1, 'smooth')");
  bench::Dataset smooth(n, kImageBytes, 42);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db.get(), "SELECT id, label, pixels FROM smooth ORDER BY id", -1, &stmt, nullptr);
  std::size_t i = 0;
  while (sqlite3_step(stmt) == SQLITE_ROW && i < n) {
    smooth.labels[i] = sqlite3_column_int64(stmt, 1);
    std::memcpy(smooth.pixels.data() + i * kImageBytes, sqlite3_column_blob(stmt, 2), kImageBytes);
    ++i;
  }
  sqlite3_finalize(stmt);
  return smooth;
}

// One compression kind's tables: t1<suffix> (threads=1) and t2<suffix> (threads=2).
struct Kind {
  std::string compression;  // "none" or "gzip:4"
  std::string source;       // the native table holding the images
  const bench::Dataset* data;
  std::string suffix() const { return compression == "none" ? "u" : "z"; }
  std::string table(int threads) const { return "t" + std::to_string(threads) + suffix(); }
};

Side load_side(bench::Db& db, const std::filesystem::path& dir, const Kind& kind, const std::string& raw_path) {
  Side load;
  std::filesystem::remove(raw_path);
  load.raw = bench::timed([&] { raw_load(raw_path, *kind.data, kind.compression == "none" ? 0 : 4); });
  db.exec("DROP TABLE IF EXISTS native_copy");
  db.exec("CREATE TABLE native_copy(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, pixels BLOB NOT NULL)");
  load.native = bench::timed([&] { db.exec("INSERT INTO native_copy SELECT * FROM " + kind.source); });
  db.exec("DROP TABLE native_copy");
  for (const int threads : {1, 2}) {
    const auto path = (dir / (kind.table(threads) + ".h5")).string();
    db.exec("CREATE VIRTUAL TABLE " + kind.table(threads) + " USING hdf5(path='" + path + "', shape='32x32x3', compression='" +
            kind.compression + "', threads=" + std::to_string(threads) + ")");
    (threads == 1 ? load.t1 : load.t2) = bench::timed([&] { db.exec("INSERT INTO " + kind.table(threads) + " SELECT * FROM " + kind.source); });
  }
  // Both stores hold the same images: their digests are equal.
  if (db.text("SELECT image_digest(id, label, pixels) FROM " + kind.table(1)) !=
      db.text("SELECT image_digest(id, label, pixels) FROM " + kind.table(2))) {
    throw std::runtime_error(kind.compression + ": the threads=1 and threads=2 stores differ");
  }
  return load;
}

// Lookups of every id in random order on the raw reader, the native table and both stores (uncompressed only:
// point reads of a gzip store decompress a chunk each).
void lookup_rows(bench::Db& db, const Kind& kind, const std::string& raw_path, std::vector<std::pair<std::string, Side>>& rows) {
  std::uint64_t expected_lookups = 0;
  std::vector<std::uint8_t> one(kImageBytes);
  Side loop;
  Side join;
  Side in_lists;
  {
    const RawReader raw(raw_path);
    loop.raw = bench::timed([&] {
      for (const auto id : kind.data->lookup_order) {
        raw.read(static_cast<hsize_t>(id), 1, one.data());
        expected_lookups += bench::touch(one.data(), one.size());
      }
    });
  }
  lookups(db, *kind.data, kind.source, loop.native, join.native, in_lists.native, expected_lookups);
  lookups(db, *kind.data, kind.table(1), loop.t1, join.t1, in_lists.t1, expected_lookups);
  lookups(db, *kind.data, kind.table(2), loop.t2, join.t2, in_lists.t2, expected_lookups);
  rows.emplace_back("none point lookups, WHERE id = ? loop", loop);
  rows.emplace_back("none point lookups, join from a native id table", join);
  rows.emplace_back("none IN lists of 256 random ids", in_lists);
}

// Cold scans, the page cache dropped before each side (root only); empty when it cannot be dropped.
std::optional<Side> cold_side(bench::Db& db, const std::filesystem::path& dir, const Kind& kind, const std::string& raw_path,
                              std::size_t n, std::uint64_t expected) {
  if (!bench::drop_page_cache()) return std::nullopt;
  Side cold;
  std::uint64_t sum = 0;
  cold.raw = raw_scan(raw_path, n, sum);
  for (const int threads : {1, 2}) {
    // Reopened after the drop, as raw_scan opens its reader: pages a mapping still holds are not dropped.
    db.exec("DROP TABLE " + kind.table(threads));  // the table, not the store's file
    bench::drop_page_cache();
    db.exec("CREATE VIRTUAL TABLE " + kind.table(threads) + " USING hdf5(path='" + (dir / (kind.table(threads) + ".h5")).string() +
            "', threads=" + std::to_string(threads) + ")");
    (threads == 1 ? cold.t1 : cold.t2) = sql_scan(db, kind.table(threads), expected, nullptr, "");
  }
  bench::drop_page_cache();
  cold.native = sql_scan(db, kind.source, expected, nullptr, "");
  return cold;
}

void print_memory(const std::vector<Memory>& memory) {
  std::printf("\nAnonymous memory (RssAnon: heap and buffers, not mapped file pages) a full scan adds, and the\n"
              "process's RSS before it and at its peak (the process holds both data sets in memory):\n\n");
  std::printf("| scan | RssAnon growth | RSS before | peak RSS (VmHWM) |\n|---|---:|---:|---:|\n");
  for (const auto& m : memory) {
    std::printf("| %s | %.1f MB | %.1f MB | %.1f MB |\n", m.scan.c_str(), static_cast<double>(m.anon_growth_kb) / 1024,
                static_cast<double>(m.rss_before_kb) / 1024, static_cast<double>(m.peak_kb) / 1024);
  }
  std::fflush(stdout);
}

void threads_table(bench::Db& db, const std::filesystem::path& dir, const bench::Dataset& random, std::size_t n) {
  std::vector<std::pair<std::string, Side>> rows;
  std::vector<Memory> memory;
  db.exec("CREATE TABLE lookup_ids(k INTEGER PRIMARY KEY, id INTEGER)");
  db.exec("BEGIN");
  for (std::size_t i = 0; i < n; ++i) {
    db.exec("INSERT INTO lookup_ids VALUES (" + std::to_string(i) + ", " + std::to_string(random.lookup_order[i]) + ")");
  }
  db.exec("COMMIT");
  const bench::Dataset smooth = smooth_images(db, n);
  for (const Kind& kind : {Kind{"none", "ref", &random}, Kind{"gzip:4", "smooth", &smooth}}) {
    const auto raw_path = (dir / ("raw-" + kind.compression + ".h5")).string();
    rows.emplace_back(kind.compression + " load (INSERT ... SELECT, 1 txn)", load_side(db, dir, kind, raw_path));
    std::uint64_t expected = 0;
    Side scan;
    scan.raw = raw_scan(raw_path, n, expected);
    scan.native = sql_scan(db, kind.source, expected, &memory, "native " + kind.source);
    for (const int threads : {1, 2}) {
      (threads == 1 ? scan.t1 : scan.t2) =
          sql_scan(db, kind.table(threads), expected, &memory, kind.compression + ", threads=" + std::to_string(threads));
    }
    rows.emplace_back(kind.compression + " full scan, warm", scan);
    if (kind.compression == "none") lookup_rows(db, kind, raw_path, rows);
    if (const auto cold = cold_side(db, dir, kind, raw_path, n, expected)) {
      rows.emplace_back(kind.compression + " full scan, cold (page cache dropped)", *cold);
    }
  }
  print_sides(n, rows);
  print_memory(memory);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 100000;
  const std::string extension = argc > 2 ? argv[2] : "build/imgstore";
  try {
    const auto dir = bench::scratch_dir("hdf5");
    const bench::Dataset data(n, 3072, 42);
    bench::Db db((dir / "native.db").string(), extension);
    db.load_native("ref", data);
    std::vector<bench::Row> rows;

    const auto raw_path = (dir / "raw.h5").string();
    rows.push_back(bulk_load(db, dir, data, raw_path));
    const RawReader raw(raw_path);
    rows.push_back(full_scan(db, raw, n));
    rows.push_back(point_lookups(db, raw, data));
    bench::print_report("HDF5, 32x32x3", n, rows);
    print_file_sizes(db, dir, n);
    threads_table(db, dir, data, n);
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_hdf5: %s\n", e.what());
    return 1;
  }
  return 0;
}
