// png_dir: the png_dir virtual table with threads=1 and threads=2 against a raw single-threaded libpng loop
// writing and reading the same files at the same compression level, in the same run.
//
//   build/bench/bench_png [N ...] [--ext build/imgstore]      (default 10000 100000)
//
// Images: synthetic 'smooth' 32x32x3 (gradients and waves with a little noise, which compress like photos;
// random bytes would not compress at all). Store = INSERT ... SELECT from a native table in one transaction
// (durable: the commit syncs) vs encode + write <id>.png + labels.csv, with one final syncfs and without it.
// The directory-operation ceiling: create + write + close of N files of already-encoded PNG bytes, nothing
// else (what no encoder, however parallel, can go below on this file system). Read = a full scan decoding
// every image and reading every byte vs read + decode of each file; anonymous memory (RssAnon) growth over
// each scan and the peak RSS are printed after the table.

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>

#include "bench_system.hpp"
#include "bench_util.hpp"
#include "raw_baselines.hpp"

namespace {

constexpr int kLevel = 6;  // png_dir's default, and the raw baseline's

// The same pixels and labels for the raw loop, read back from the native table.
raw::Images read_images(bench::Db& db, std::size_t n) {
  raw::Images images;
  images.height = 32;
  images.width = 32;
  images.channels = 3;
  images.pixels.resize(n * 3072);
  images.labels.resize(n);
  images.ids.resize(n);
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db.get(), "SELECT id, label, pixels FROM ref ORDER BY id", -1, &stmt, nullptr);
  while (sqlite3_step(stmt) == SQLITE_ROW) {
    const auto id = static_cast<std::size_t>(sqlite3_column_int64(stmt, 0));
    images.ids[id] = static_cast<std::int64_t>(id);
    images.labels[id] = sqlite3_column_int64(stmt, 1);
    std::memcpy(images.pixels.data() + id * 3072, sqlite3_column_blob(stmt, 2), 3072);
  }
  sqlite3_finalize(stmt);
  return images;
}

// Start every timing with no dirty data of earlier steps left to flush (syncfs flushes the whole disk).
void flush(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY);
  ::syncfs(fd);
  ::close(fd);
}

// The directory-operation ceiling: N files created, written with `bytes` and closed, nothing else.
void create_files(const std::filesystem::path& dir, std::size_t n, const std::vector<std::uint8_t>& bytes) {
  std::filesystem::create_directories(dir);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string path = (dir / (std::to_string(i) + ".png")).string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
      throw std::runtime_error("cannot write " + path);
    }
    ::close(fd);
  }
}

std::vector<std::uint8_t> file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every PNG file of `a` has the same bytes in `b`, and the two hold as many.
bool same_pngs(const std::filesystem::path& a, const std::filesystem::path& b) {
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(a)) {
    if (entry.path().extension() != ".png") continue;
    ++files;
    if (file_bytes(entry.path()) != file_bytes(b / entry.path().filename())) return false;
  }
  std::size_t others = 0;
  for (const auto& entry : std::filesystem::directory_iterator(b)) others += entry.path().extension() == ".png" ? 1 : 0;
  return files == others;
}

struct Stores {
  double raw_sync = 1e9, raw_nosync = 1e9, ceiling = 1e9, sql1 = 1e9, sql2 = 1e9;
  std::filesystem::path raw_dir;        // the last raw store (with sync), for the reads
  std::string sql1_dir, sql2_dir;       // the last stores of p1 (threads=1) and p2 (threads=2)
};

void create_table(bench::Db& db, const std::string& name, const std::string& dir, unsigned threads) {
  db.exec("CREATE VIRTUAL TABLE " + name + " USING png_dir(path='" + dir + "', shape='32x32x3', level=" +
          std::to_string(kLevel) + ", threads=" + std::to_string(threads) + ")");
}

// Best of `reps`, interleaved, in fresh directories, the order reversed on every other round. Nothing is
// deleted until the run ends: ext4 passes over recently freed inodes when it allocates (recently_deleted() in
// perf), so files created just after a mass delete cost more, and whichever step came after one would pay.
Stores time_stores(bench::Db& db, const std::filesystem::path& dir, const raw::Images& images, int reps) {
  Stores s;
  std::vector<std::uint8_t> encoded;
  for (int k = 0; k < reps; ++k) {
    const std::string rep = std::to_string(k);
    if (k > 0) {
      db.exec("DROP TABLE p1");
      db.exec("DROP TABLE p2");
    }
    s.raw_dir = dir / ("raw" + rep) / "files";
    s.sql1_dir = (dir / ("vtab1_" + rep)).string();
    s.sql2_dir = (dir / ("vtab2_" + rep)).string();
    create_table(db, "p1", s.sql1_dir, 1);
    create_table(db, "p2", s.sql2_dir, 2);
    const std::vector<std::function<void()>> steps = {
        [&] { s.raw_sync = std::min(s.raw_sync, bench::timed([&] { raw::write_png_files(s.raw_dir.string(), images, true); })); },
        [&] { s.sql1 = std::min(s.sql1, bench::timed([&] { db.exec("INSERT INTO p1 SELECT * FROM ref"); })); },
        [&] { s.sql2 = std::min(s.sql2, bench::timed([&] { db.exec("INSERT INTO p2 SELECT * FROM ref"); })); },
        [&] {
          const auto nosync_dir = dir / ("nosync" + rep);
          s.raw_nosync = std::min(s.raw_nosync, bench::timed([&] { raw::write_png_files(nosync_dir.string(), images, false); }));
          if (encoded.empty()) encoded = file_bytes(nosync_dir / "0.png");
        },
        [&] {
          const auto ceiling_dir = dir / ("ceiling" + rep);
          s.ceiling = std::min(s.ceiling, bench::timed([&] { create_files(ceiling_dir, images.n(), encoded); }));
        },
    };
    // The ceiling needs the encoded bytes of one image: the no-sync raw loop runs before it either way.
    const std::vector<int> order = k % 2 == 0 ? std::vector<int>{0, 1, 2, 3, 4} : std::vector<int>{3, 4, 2, 1, 0};
    for (const int step : order) {
      flush(dir);
      steps[static_cast<std::size_t>(step)]();
    }
  }
  return s;
}

struct Scan {
  double seconds = 0;
  long anon_growth_kb = 0;
};

// A full scan of `table`, checked against the raw read's digest.
Scan time_scan(bench::Db& db, const std::string& table, const std::string& expected) {
  Scan scan;
  std::string digest;
  const long before = bench::status_kib("RssAnon");
  scan.seconds = bench::timed([&] { digest = db.text("SELECT image_digest(id, label, pixels) FROM " + table); });
  scan.anon_growth_kb = bench::status_kib("RssAnon") - before;
  if (digest != expected) throw std::runtime_error("the reads of " + table + " differ: " + digest + " vs " + expected);
  return scan;
}

void run(std::size_t n, const std::string& extension) {
  const auto dir = bench::scratch_dir("png");
  bench::Db db((dir / "native.db").string(), extension);
  db.exec("CREATE TABLE ref AS SELECT * FROM synthetic(" + std::to_string(n) + ", '32x32x3', 5, 'smooth')");
  const raw::Images images = read_images(db, n);
  flush(dir);
  const Stores s = time_stores(db, dir, images, n <= 20000 ? 2 : 1);

  raw::Digest raw_digest;
  const auto raw_reader = raw::open("png_dir", s.raw_dir.string(), images);
  const double raw_read = bench::timed([&] { raw_digest = raw_reader->read_all(); });
  const Scan scan1 = time_scan(db, "p1", raw_digest.text());
  const Scan scan2 = time_scan(db, "p2", raw_digest.text());
  const Scan native = time_scan(db, "ref", raw_digest.text());
  // Threaded and unthreaded stores hold the same images (the scans agree), and the same bytes:
  const bool same = same_pngs(s.sql1_dir, s.sql2_dir);

  const std::string raw_s = "raw libpng loop, 1 thread, + syncfs";
  const std::string raw_n = "raw libpng loop, 1 thread, no sync";
  const std::string raw_r = "raw read + libpng decode + hash, 1 thread";
  std::vector<bench::Row> rows = {
      {"store, threads=1 (INSERT ... SELECT, 1 durable txn)", s.sql1, s.raw_sync, raw_s, ""},
      {"store, threads=2", s.sql2, s.raw_sync, raw_s, ""},
      {"store, threads=1 (ours syncs, raw does not)", s.sql1, s.raw_nosync, raw_n, ""},
      {"store, threads=2 (ours syncs, raw does not)", s.sql2, s.raw_nosync, raw_n, ""},
      {"ceiling: create+write+close of N encoded files", s.ceiling, s.raw_nosync, raw_n, ""},
      {"read, threads=1 (full scan, every byte hashed)", scan1.seconds, raw_read, raw_r, ""},
      {"read, threads=2", scan2.seconds, raw_read, raw_r, ""},
      {"read, native SQLite table (same rows)", native.seconds, raw_read, raw_r, ""},
  };
  bench::print_report("png_dir, 32x32x3 smooth synthetic, level 6, threads=1 and threads=2", n, rows);
  std::printf("\nRssAnon growth over the full scan: threads=1 %ld kB, threads=2 %ld kB; peak RSS (VmHWM) so far %ld kB; "
              "threaded and unthreaded stores hold the same bytes: %s\n",
              scan1.anon_growth_kb, scan2.anon_growth_kb, bench::status_kib("VmHWM"), same ? "yes" : "NO");

  const auto png_bytes = db.scalar("SELECT file_bytes('" + s.sql1_dir + "')");
  const auto disk_bytes = db.scalar("SELECT disk_usage('" + s.sql1_dir + "')");
  std::printf("\nPNG files and labels.csv: %lld bytes (%.0f per image); allocated on disk: %lld bytes (%.0f per image, "
              "4 KiB blocks); raw pixels: %zu bytes\n",
              static_cast<long long>(png_bytes), static_cast<double>(png_bytes) / static_cast<double>(n),
              static_cast<long long>(disk_bytes), static_cast<double>(disk_bytes) / static_cast<double>(n), n * 3072);
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> counts;
  std::string extension = "build/imgstore";
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--ext" && i + 1 < argc) {
      extension = argv[++i];
    } else {
      counts.push_back(std::stoul(argv[i]));
    }
  }
  if (counts.empty()) counts = {10000, 100000};
  try {
    for (const std::size_t n : counts) run(n, extension);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_png: %s\n", e.what());
    return 1;
  }
  return 0;
}
