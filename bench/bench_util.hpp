// Shared helpers of the benchmark programs: timing, deterministic data, a SQLite connection with the
// extension loaded, and a markdown report with ratios measured in the same run.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs f once and returns its wall time in seconds. Dirty pages of earlier steps are written out first
// (sync), so that no measurement pays for another's writeback.
template <typename F>
double timed(F&& f) {
  ::sync();
  const auto start = std::chrono::steady_clock::now();
  f();
  return seconds_since(start);
}

// N images of `bytes` random pixels with labels 0..9, in one contiguous buffer allocated once.
struct Dataset {
  std::size_t n = 0;
  std::size_t bytes = 0;
  std::vector<std::uint8_t> pixels;
  std::vector<std::int64_t> labels;
  std::vector<std::int64_t> lookup_order;  // a random permutation of 0..n-1

  Dataset(std::size_t count, std::size_t image_bytes, std::uint64_t seed) : n(count), bytes(image_bytes) {
    std::mt19937_64 rng(seed);
    pixels.resize(n * bytes);
    for (std::size_t i = 0; i < pixels.size(); i += 8) {
      const std::uint64_t r = rng();
      for (std::size_t k = 0; k < 8 && i + k < pixels.size(); ++k) pixels[i + k] = static_cast<std::uint8_t>(r >> (8 * k));
    }
    labels.resize(n);
    for (auto& l : labels) l = static_cast<std::int64_t>(rng() % 10);
    lookup_order.resize(n);
    for (std::size_t i = 0; i < n; ++i) lookup_order[i] = static_cast<std::int64_t>(i);
    std::shuffle(lookup_order.begin(), lookup_order.end(), rng);
  }
  const std::uint8_t* image(std::size_t i) const { return pixels.data() + i * bytes; }
};

// Sums the bytes of a buffer 8 at a time: cheap, but it reads every byte, so a scan cannot skip them.
inline std::uint64_t touch(const void* data, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  std::uint64_t sum = 0;
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t w;
    __builtin_memcpy(&w, p + i, 8);
    sum += w;
  }
  for (; i < size; ++i) sum += p[i];
  return sum;
}

inline std::uint64_t touch32(const void* data, std::size_t size) { return touch(data, size) & 0xffffffffu; }

class Db {
 public:
  explicit Db(const std::string& path, const std::string& extension) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("cannot open " + path);
    sqlite3_enable_load_extension(db_, 1);
    char* err = nullptr;
    if (sqlite3_load_extension(db_, extension.c_str(), "sqlite3_imgstore_init", &err) != SQLITE_OK) {
      const std::string message = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error("cannot load " + extension + ": " + message);
    }
    sqlite3_create_function(db_, "bench_touch", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, nullptr,
                            [](sqlite3_context* ctx, int, sqlite3_value** argv) {
                              // 32 bits, so that sum() over 100,000 rows cannot overflow.
                              sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(touch32(
                                  sqlite3_value_blob(argv[0]), static_cast<std::size_t>(sqlite3_value_bytes(argv[0])))));
                            },
                            nullptr, nullptr);
  }
  ~Db() { sqlite3_close_v2(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  sqlite3* get() const { return db_; }
  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string message = err ? err : "?";
      sqlite3_free(err);
      throw std::runtime_error(sql.substr(0, 80) + ": " + message);
    }
  }
  std::int64_t scalar(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    }
    std::int64_t value = 0;
    const int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    return value;
  }

  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db_));
    std::string value;
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return value;
  }

  // Fills a native table `name` with the data set (one transaction).
  void load_native(const std::string& name, const Dataset& data) {
    exec("CREATE TABLE " + name + "(id INTEGER PRIMARY KEY, label INTEGER NOT NULL, pixels BLOB NOT NULL)");
    exec("BEGIN");
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, ("INSERT INTO " + name + " VALUES (?, ?, ?)").c_str(), -1, &stmt, nullptr);
    for (std::size_t i = 0; i < data.n; ++i) {
      sqlite3_bind_int64(stmt, 1, static_cast<sqlite3_int64>(i));
      sqlite3_bind_int64(stmt, 2, data.labels[i]);
      sqlite3_bind_blob(stmt, 3, data.image(i), static_cast<int>(data.bytes), SQLITE_STATIC);
      sqlite3_step(stmt);
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    exec("COMMIT");
  }

  // Point lookups of every id in `order` through one prepared statement; returns the touch sum.
  std::uint64_t lookups(const std::string& table, const std::vector<std::int64_t>& order) {
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db_, ("SELECT pixels FROM " + table + " WHERE id = ?").c_str(), -1, &stmt, nullptr);
    std::uint64_t sum = 0;
    for (const auto id : order) {
      sqlite3_bind_int64(stmt, 1, id);
      if (sqlite3_step(stmt) == SQLITE_ROW) {
        sum += touch(sqlite3_column_blob(stmt, 0), static_cast<std::size_t>(sqlite3_column_bytes(stmt, 0)));
      }
      sqlite3_reset(stmt);
    }
    sqlite3_finalize(stmt);
    return sum;
  }

 private:
  sqlite3* db_ = nullptr;
};

struct Row {
  std::string measure;
  double ours;      // seconds, the SQL path
  double baseline;  // seconds, the reference doing the same work
  std::string baseline_name;
  std::string note;
};

inline void print_report(const std::string& title, std::size_t n, const std::vector<Row>& rows) {
  std::printf("\n### %s (%zu images)\n\n", title.c_str(), n);
  std::printf("| measure | SQL path | baseline | baseline time | ratio | per image (SQL) |\n");
  std::printf("|---|---:|---|---:|---:|---:|\n");
  for (const auto& r : rows) {
    std::printf("| %s | %.3f s | %s | %.3f s | %.2fx | %.2f us |%s\n", r.measure.c_str(), r.ours,
                r.baseline_name.c_str(), r.baseline, r.ours / r.baseline, r.ours / static_cast<double>(n) * 1e6,
                r.note.empty() ? "" : (" " + r.note).c_str());
  }
  std::fflush(stdout);
}

inline std::filesystem::path scratch_dir(const std::string& name) {
  const char* base = std::getenv("IMGSTORE_BENCH_DIR");
  auto dir = std::filesystem::path(base ? base : "/tmp") / ("imgstore-bench-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace bench
