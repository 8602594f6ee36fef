// png_dir: the png_dir virtual table against a raw libpng loop writing and reading the same files at the
// same compression level, in the same run.
//
//   build/bench/bench_png [N ...] [--ext build/imgstore]      (default 10000 100000)
//
// Images: synthetic 'smooth' 32x32x3 (gradients and waves with a little noise, which compress like photos;
// random bytes would not compress at all). Store = INSERT ... SELECT from a native table in one transaction
// vs encode + write <id>.png + labels.csv + one syncfs (the durability our commit gives). Read = a full scan
// decoding every image and reading every byte vs read + decode of each file.

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

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

// The store timings and where the last run left each store.
struct Stores {
  double raw_store = 1e9;
  double sql_store = 1e9;
  std::filesystem::path raw_dir;
  std::string sql_dir;  // the virtual table p's directory
};

// Best of 2, interleaved, in fresh directories: the first files created in a run pay for the kernel's
// inode and dentry caches growing (first-touch pages), whichever side goes first.
Stores time_stores(bench::Db& db, const std::filesystem::path& dir, const raw::Images& images) {
  Stores s;
  for (int k = 0; k < 2; ++k) {
    if (k > 0) {
      std::filesystem::remove_all(s.raw_dir.parent_path());
      db.exec("DROP TABLE p");
      std::filesystem::remove_all(s.sql_dir);
    }
    s.raw_dir = dir / ("raw" + std::to_string(k)) / "files";
    const auto raw_store_dir = raw::create("png_dir", s.raw_dir.string(), images);
    flush(dir);
    s.raw_store = std::min(s.raw_store, bench::timed([&] { raw_store_dir->write(images); }));
    s.sql_dir = (dir / ("vtab" + std::to_string(k))).string();
    db.exec("CREATE VIRTUAL TABLE p USING png_dir(path='" + s.sql_dir + "', shape='32x32x3', level=" + std::to_string(kLevel) + ")");
    flush(dir);
    s.sql_store = std::min(s.sql_store, bench::timed([&] { db.exec("INSERT INTO p SELECT * FROM ref"); }));
  }
  return s;
}

// Reads both stores back; what they read must agree.
bench::Row time_reads(bench::Db& db, const Stores& stores, const raw::Images& images) {
  raw::Digest raw_digest;
  const auto raw_reader = raw::open("png_dir", stores.raw_dir.string(), images);
  const double raw_read = bench::timed([&] { raw_digest = raw_reader->read_all(); });
  std::string sql_digest;
  const double sql_read = bench::timed([&] { sql_digest = db.text("SELECT image_digest(id, label, pixels) FROM p"); });
  if (sql_digest != raw_digest.text()) throw std::runtime_error("the reads differ: " + sql_digest + " vs " + raw_digest.text());
  return {"read many (full scan, every byte hashed)", sql_read, raw_read, "raw read + libpng decode + hash", ""};
}

void run(std::size_t n, const std::string& extension) {
  const auto dir = bench::scratch_dir("png");
  bench::Db db((dir / "native.db").string(), extension);
  db.exec("CREATE TABLE ref AS SELECT * FROM synthetic(" + std::to_string(n) + ", '32x32x3', 5, 'smooth')");
  const raw::Images images = read_images(db, n);
  flush(dir);
  const Stores stores = time_stores(db, dir, images);
  const bench::Row read = time_reads(db, stores, images);

  const auto png_bytes = db.scalar("SELECT file_bytes('" + stores.sql_dir + "')");
  const auto disk_bytes = db.scalar("SELECT disk_usage('" + stores.sql_dir + "')");
  std::vector<bench::Row> rows = {
      {"store many (INSERT ... SELECT, 1 txn)", stores.sql_store, stores.raw_store, "raw libpng encode + write + syncfs", ""},
      read,
  };
  bench::print_report("png_dir, 32x32x3 smooth synthetic, level 6", n, rows);
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
