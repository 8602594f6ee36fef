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
#include <png.h>
#include <unistd.h>

#include <csetjmp>
#include <cstring>

#include "bench_util.hpp"

namespace {

constexpr int kLevel = 6;

void raw_write_png(const std::string& path, const std::uint8_t* pixels, std::vector<std::uint8_t>& buffer) {
  buffer.clear();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) throw std::runtime_error("libpng write failed");
  png_set_write_fn(
      png, &buffer,
      [](png_structp p, png_bytep data, png_size_t n) {
        auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(p));
        out->insert(out->end(), data, data + n);
      },
      nullptr);
  png_set_IHDR(png, info, 32, 32, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, kLevel);
  png_write_info(png, info);
  for (int y = 0; y < 32; ++y) png_write_row(png, const_cast<png_bytep>(pixels + y * 96));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (::write(fd, buffer.data(), buffer.size()) != static_cast<ssize_t>(buffer.size())) throw std::runtime_error("write");
  ::close(fd);
}

struct Input {
  const std::vector<std::uint8_t>* bytes;
  std::size_t offset;
};

std::uint64_t raw_read_png(const std::string& path, std::vector<std::uint8_t>& file, std::vector<std::uint8_t>& pixels) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  file.resize(1 << 16);
  const ssize_t n = ::read(fd, file.data(), file.size());
  ::close(fd);
  file.resize(static_cast<std::size_t>(n));
  Input in{&file, 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) throw std::runtime_error("libpng read failed");
  png_set_read_fn(png, &in, [](png_structp p, png_bytep data, png_size_t size) {
    auto* input = static_cast<Input*>(png_get_io_ptr(p));
    std::memcpy(data, input->bytes->data() + input->offset, size);
    input->offset += size;
  });
  png_read_info(png, info);
  png_read_update_info(png, info);
  pixels.resize(3072);
  png_bytep rows[32];
  for (int y = 0; y < 32; ++y) rows[y] = pixels.data() + y * 96;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return bench::touch32(pixels.data(), pixels.size());
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
    for (const std::size_t n : counts) {
      const auto dir = bench::scratch_dir("png");
      bench::Db db((dir / "native.db").string(), extension);
      db.exec("CREATE TABLE ref AS SELECT * FROM synthetic(" + std::to_string(n) + ", '32x32x3', 5, 'smooth')");
      // The same pixels and labels for the raw loop, read back from the native table.
      std::vector<std::uint8_t> all(n * 3072);
      std::vector<std::int64_t> labels(n);
      {
        sqlite3_stmt* stmt = nullptr;
        sqlite3_prepare_v2(db.get(), "SELECT id, label, pixels FROM ref ORDER BY id", -1, &stmt, nullptr);
        while (sqlite3_step(stmt) == SQLITE_ROW) {
          const auto id = static_cast<std::size_t>(sqlite3_column_int64(stmt, 0));
          labels[id] = sqlite3_column_int64(stmt, 1);
          std::memcpy(all.data() + id * 3072, sqlite3_column_blob(stmt, 2), 3072);
        }
        sqlite3_finalize(stmt);
      }
      // Start every timing with no dirty data of earlier steps left to flush (syncfs flushes the whole disk).
      const auto flush = [&] {
        const int fd = ::open(dir.c_str(), O_RDONLY);
        ::syncfs(fd);
        ::close(fd);
      };
      flush();
      // Best of 2, interleaved, in fresh directories: the first files created in a run pay for the kernel's
      // inode and dentry caches growing (first-touch pages), whichever side goes first.
      std::vector<std::uint8_t> buffer;
      double raw_store = 1e9;
      double sql_store = 1e9;
      std::filesystem::path raw_dir;
      std::string sql_dir;
      for (int k = 0; k < 2; ++k) {
        if (k > 0) {
          std::filesystem::remove_all(raw_dir.parent_path());
          db.exec("DROP TABLE p");
          std::filesystem::remove_all(sql_dir);
        }
        raw_dir = dir / ("raw" + std::to_string(k)) / "files";
        std::filesystem::create_directories(raw_dir);
        flush();
        raw_store = std::min(raw_store, bench::timed([&] {
          std::string csv = "id,label\n";
          for (std::size_t i = 0; i < n; ++i) {
            raw_write_png((raw_dir / (std::to_string(i) + ".png")).string(), all.data() + i * 3072, buffer);
            csv += std::to_string(i) + "," + std::to_string(labels[i]) + "\n";
          }
          std::FILE* f = std::fopen((raw_dir / "labels.csv").c_str(), "w");
          std::fwrite(csv.data(), 1, csv.size(), f);
          std::fclose(f);
          const int fd = ::open(raw_dir.c_str(), O_RDONLY);
          ::syncfs(fd);
          ::close(fd);
        }));
        sql_dir = (dir / ("vtab" + std::to_string(k))).string();
        db.exec("CREATE VIRTUAL TABLE p USING png_dir(path='" + sql_dir + "', shape='32x32x3', level=" + std::to_string(kLevel) + ")");
        flush();
        sql_store = std::min(sql_store, bench::timed([&] { db.exec("INSERT INTO p SELECT * FROM ref"); }));
      }

      std::uint64_t raw_sum = 0;
      std::vector<std::uint8_t> file;
      std::vector<std::uint8_t> pixels;
      const double raw_read = bench::timed([&] {
        for (std::size_t i = 0; i < n; ++i) raw_sum += raw_read_png((raw_dir / (std::to_string(i) + ".png")).string(), file, pixels);
      });
      std::int64_t sql_sum = 0;
      const double sql_read = bench::timed([&] { sql_sum = db.scalar("SELECT sum(bench_touch(pixels)) FROM p"); });
      if (static_cast<std::uint64_t>(sql_sum) != raw_sum) throw std::runtime_error("read sums differ");

      const auto png_bytes = db.scalar("SELECT file_bytes('" + sql_dir + "')");
      const auto disk_bytes = db.scalar("SELECT disk_usage('" + sql_dir + "')");
      std::vector<bench::Row> rows = {
          {"store many (INSERT ... SELECT, 1 txn)", sql_store, raw_store, "raw libpng encode + write + syncfs", ""},
          {"read many (full scan, every byte)", sql_read, raw_read, "raw read + libpng decode", ""},
      };
      bench::print_report("png_dir, 32x32x3 smooth synthetic, level 6", n, rows);
      std::printf("\nPNG files and labels.csv: %lld bytes (%.0f per image); allocated on disk: %lld bytes (%.0f per image, "
                  "4 KiB blocks); raw pixels: %zu bytes\n",
                  static_cast<long long>(png_bytes), static_cast<double>(png_bytes) / static_cast<double>(n),
                  static_cast<long long>(disk_bytes), static_cast<double>(disk_bytes) / static_cast<double>(n), n * 3072);
      std::filesystem::remove_all(dir);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_png: %s\n", e.what());
    return 1;
  }
  return 0;
}
