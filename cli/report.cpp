#include "report.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "output.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "raw_baselines.hpp"
#include "session.hpp"
#include "stats.hpp"

namespace imgbench {

namespace {

namespace fs = std::filesystem;

// The report's data sets: where they live and how they repeat is the experiments' policy, kept here.
constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";
constexpr std::int64_t kRepeatEvery = 50000;  // the original comparison repeated CIFAR-10's 50,000 training images

struct Dataset {
  std::string key;     // file-name friendly
  std::string source;  // dataset() source
  std::string label;   // for people
};

struct Result {
  std::string dataset, backend, measure;
  std::int64_t n = 0;
  Timing sql, raw;
  std::string note;
  std::int64_t allocated = -1, file_bytes = -1, raw_allocated = -1;
};

std::string fixed(double v, const char* format = "%.6f") {
  char text[64];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

std::string extension_of(const std::string& backend) {
  if (backend == "lmdb") return ".lmdb";
  if (backend == "hdf5") return ".h5";
  return "";
}

void remove_store(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  fs::remove(path + "-lock", ec);
}

std::int64_t allocated_bytes(Session& s, const std::string& path) {
  s.set_text_param("@probe", path);
  return std::stoll(s.query_text("SELECT disk_usage(@probe)"));
}

// Runs per figure: enough for a median and a range; the one-image figures are cheap, so more.
constexpr int kRuns = 3;
constexpr int kOneRuns = 5;

class Runner {
 public:
  explicit Runner(const ReportOptions& o, std::size_t datasets)
      : o_(o), session_(o.extension), progress_(o.progress, static_cast<int>(datasets * o.backends.size() * (o.counts.size() + 1)), total_weight(datasets)) {
    session_.on_progress = [this](const std::string& what, double elapsed) { progress_.running(what, elapsed); };
  }

  std::vector<Result> results;

  void run(const std::vector<Dataset>& datasets) {
    for (const auto& d : datasets) {
      for (const auto& backend : o_.backends) {
        store_one(d, backend);
        for (const auto n : o_.counts) many(d, backend, n);
      }
    }
    progress_.clear();
  }

 private:
  // A step's expected cost, for the estimate of the time left: a fixed part and a part per image, which
  // is about 20 times larger for a directory of PNG files (a file per image).
  static double weight(const std::string& backend, std::int64_t n) {
    return 1 + static_cast<double>(n) / (backend == "png_dir" ? 10 : 200);
  }
  double total_weight(std::size_t datasets) const {
    double w = 0;
    for (const auto& backend : o_.backends) {
      w += 1;
      for (const auto n : o_.counts) w += weight(backend, n);
    }
    return w * static_cast<double>(datasets);
  }

  std::string script(const std::string& name) const { return o_.sql_dir + "/" + name + ".sql"; }

  // Runs a script and returns the time of its statement labelled `measure`.
  StatementRun measured(const std::string& name, const std::string& measure) {
    for (auto& run : session_.run_script(script(name))) {
      if (run.label == measure) return run;
    }
    throw std::runtime_error(script(name) + " has no statement labelled '-- measure: " + measure + "'");
  }

  void params(const Dataset& d, const std::string& backend, const std::string& path, std::int64_t n) {
    // Text as it is: a path or a --cifar directory may hold quotes.
    session_.set_text_param("@backend", backend);
    session_.set_text_param("@path", path);
    session_.set_text_param("@source", d.source);
    session_.set_param("@every", std::to_string(kRepeatEvery));
    session_.set_text_param("@shape", shape_);
    session_.set_param("@n", std::to_string(n));
    session_.set_param("@id", std::to_string(n / 2));
  }

  raw::Images load(const Dataset& d, std::int64_t n) {
    raw::Images images;
    const Statement stmt = prepare(session_.db(), "SELECT id, label, pixels FROM dataset(?1, ?2, ?3)");
    sqlite3_bind_text(stmt.get(), 1, d.source.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt.get(), 2, n);
    sqlite3_bind_int64(stmt.get(), 3, kRepeatEvery);
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      images.ids.push_back(sqlite3_column_int64(stmt.get(), 0));
      images.labels.push_back(sqlite3_column_int64(stmt.get(), 1));
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt.get(), 2));
      images.pixels.insert(images.pixels.end(), p, p + sqlite3_column_bytes(stmt.get(), 2));
    }
    if (rc != SQLITE_DONE) throw std::runtime_error("reading data set " + d.source + ": " + sqlite3_errmsg(session_.db()));
    unsigned h = 0, w = 0, c = 0;
    std::sscanf(shape_.c_str(), "%ux%ux%u", &h, &w, &c);
    images.height = h;
    images.width = w;
    images.channels = c;
    return images;
  }

  std::string store_path(const Dataset& d, const std::string& backend, const std::string& kind, std::int64_t n, int r) const {
    const fs::path dir = fs::path(o_.scratch) / d.key / backend;
    fs::create_directories(dir);
    return (dir / (kind + "-n" + std::to_string(n) + "-r" + std::to_string(r) + extension_of(backend))).string();
  }

  void begin_step(const Dataset& d, const std::string& backend, const std::string& what, std::int64_t n) {
    progress_.start(d.key + " " + backend + " " + what, weight(backend, n));
    session_.set_text_param("@probe", d.source);  // bound, not spliced: a --cifar path may hold a quote
    shape_ = session_.query_text("SELECT dataset_shape(@probe)");
  }

  void store_one(const Dataset& d, const std::string& backend) {
    begin_step(d, backend, "store one", 1);
    const raw::Images one = load(d, 1);
    Result r{d.key, backend, "store_one", 1, {}, {}, "", -1, -1, -1};
    for (int k = 0; k < kOneRuns; ++k) {
      const std::string sql_path = store_path(d, backend, "one-sql", 1, k);
      const std::string raw_path = store_path(d, backend, "one-raw", 1, k);
      params(d, backend, sql_path, 1);
      r.sql.samples.push_back(measured("store_one", "store_one").seconds);
      const auto raw_store = raw::create(backend, raw_path, one);
      const double start = now_seconds();
      raw_store->write(one);
      r.raw.samples.push_back(now_seconds() - start);
      remove_store(sql_path);
      remove_store(raw_path);
    }
    results.push_back(r);
  }

  // The two stores of one count, made kRuns times (each run into new stores); the last pair is kept.
  struct Stores {
    std::string sql_path, raw_path;
  };

  Stores store_many(const Dataset& d, const std::string& backend, const raw::Images& images, Result& store) {
    const auto n = static_cast<std::int64_t>(images.n());
    Stores s;
    for (int k = 0; k < kRuns; ++k) {
      if (k > 0) {
        remove_store(s.sql_path);
        remove_store(s.raw_path);
      }
      s = {store_path(d, backend, "many-sql", n, k), store_path(d, backend, "many-raw", n, k)};
      params(d, backend, s.sql_path, n);
      ::sync();  // no measurement pays for an earlier one's writeback
      store.sql.samples.push_back(measured("store_many", "store_many").seconds);
      ::sync();
      const auto raw_store = raw::create(backend, s.raw_path, images);
      const double start = now_seconds();
      raw_store->write(images);
      store.raw.samples.push_back(now_seconds() - start);
    }
    params(d, backend, s.sql_path, n);
    return s;
  }

  void disk_usage(const Stores& s, Result& usage) {
    const auto du = measured("disk_usage", "disk_usage");
    long long allocated = -1, file_bytes = -1;
    std::sscanf(du.first_row.c_str(), "%lld|%lld", &allocated, &file_bytes);
    usage.allocated = allocated;
    usage.file_bytes = file_bytes;
    usage.raw_allocated = allocated_bytes(session_, s.raw_path);
  }

  // The middle image by id, kOneRuns times each way.
  void read_one(const std::string& backend, const Stores& s, const raw::Images& images, Result& one) {
    const auto n = static_cast<std::int64_t>(images.n());
    for (int k = 0; k < kOneRuns; ++k) {
      one.sql.samples.push_back(measured("read_one", "read_one").seconds);
      const auto raw_store = raw::open(backend, s.raw_path, images);
      const double start = now_seconds();
      const raw::Digest got = raw_store->read_one(n / 2);
      one.raw.samples.push_back(now_seconds() - start);
      if (got.count != 1) throw std::runtime_error("raw read_one of " + s.raw_path + " found no image " + std::to_string(n / 2));
    }
  }

  // Every image: cold (page cache dropped when allowed) then warm, SQL and raw, the digests compared.
  void read_many(const std::string& backend, const Stores& s, const raw::Images& images, Result& cold, Result& warm) {
    for (int k = 0; k < kRuns; ++k) {
      std::string sql_digest;
      for (const auto& run : session_.run_script(script("read_many"))) {
        if (run.label != "read_many") continue;
        if (run.cold) {
          cold.sql.samples.push_back(run.seconds);
          cold.note = run.cache_dropped ? "" : "page cache NOT dropped (needs root): first read";
        } else {
          warm.sql.samples.push_back(run.seconds);
          sql_digest = run.first_row;
        }
      }
      // As in read_many.sql: the store is opened, then the page cache dropped, then read.
      const auto raw_store = raw::open(backend, s.raw_path, images);
      drop_page_cache();
      double start = now_seconds();
      raw_store->read_all();
      cold.raw.samples.push_back(now_seconds() - start);
      start = now_seconds();
      const raw::Digest got = raw_store->read_all();
      warm.raw.samples.push_back(now_seconds() - start);
      if (got.text() != sql_digest) {
        throw std::runtime_error("verification failed: " + backend + " n=" + std::to_string(images.n()) + ": SQL read " + sql_digest +
                                 ", raw read " + got.text());
      }
    }
  }

  void many(const Dataset& d, const std::string& backend, std::int64_t n) {
    begin_step(d, backend, "n=" + std::to_string(n), n);
    const raw::Images images = load(d, n);
    const auto result = [&](const char* measure) { return Result{d.key, backend, measure, n, {}, {}, "", -1, -1, -1}; };
    Result store = result("store_many"), usage = result("disk_usage"), one = result("read_one");
    Result cold = result("read_many_cold"), warm = result("read_many_warm");
    const Stores s = store_many(d, backend, images, store);
    disk_usage(s, usage);
    read_one(backend, s, images, one);
    read_many(backend, s, images, cold, warm);
    for (auto* r : {&store, &one, &cold, &warm, &usage}) results.push_back(*r);
    remove_store(s.sql_path);
    remove_store(s.raw_path);
  }

  const ReportOptions& o_;
  Session session_;
  Progress progress_;
  std::string shape_;
};

// What keeps a figure from being a finding: noisy runs, or a ratio no different from 1.
std::string warnings(const Result& r) {
  std::vector<std::string> w;
  if (!r.note.empty()) w.push_back(r.note);
  if (r.sql.empty()) return r.note;
  if (noisy(r.sql)) w.push_back("SQL " + noise_warning(r.sql));
  if (noisy(r.raw)) w.push_back("raw C " + noise_warning(r.raw));
  if (ratio_within_noise(r.sql, r.raw)) w.push_back("SQL and raw C runs overlap: no difference shown");
  std::string text;
  for (const auto& item : w) text += (text.empty() ? "" : "; ") + item;
  return text;
}

Table results_table(const std::vector<Result>& results) {
  Table t;
  t.header = {"dataset", "backend", "measure", "images", "runs", "sql_median_s", "sql_min_s", "sql_max_s",
              "raw_median_s", "raw_min_s", "raw_max_s", "ratio", "allocated_bytes", "file_bytes", "raw_allocated_bytes", "warning"};
  t.numeric = {false, false, false, true, true, true, true, true, true, true, true, true, true, true, true, false};
  for (const auto& r : results) {
    const bool timed = !r.sql.empty();
    const auto num = [](std::int64_t v) { return v < 0 ? std::string() : std::to_string(v); };
    t.rows.push_back({r.dataset, r.backend, r.measure, std::to_string(r.n), timed ? std::to_string(r.sql.runs()) : "",
                      timed ? fixed(r.sql.median()) : "", timed ? fixed(r.sql.min()) : "", timed ? fixed(r.sql.max()) : "",
                      timed ? fixed(r.raw.median()) : "", timed ? fixed(r.raw.min()) : "", timed ? fixed(r.raw.max()) : "",
                      timed && r.raw.median() > 0 ? fixed(r.sql.median() / r.raw.median(), "%.3f") : "", num(r.allocated),
                      num(r.file_bytes), num(r.raw_allocated), warnings(r)});
  }
  return t;
}

std::string machine_line() {
  utsname u{};
  uname(&u);
  std::string cpu = "unknown CPU";
  std::ifstream info("/proc/cpuinfo");
  for (std::string line; std::getline(info, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  }
  const long pages = sysconf(_SC_PHYS_PAGES);
  const double gib = static_cast<double>(pages) * static_cast<double>(sysconf(_SC_PAGE_SIZE)) / (1024.0 * 1024 * 1024);
  return std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cores (" + cpu + "), " + fixed(gib, "%.0f") + " GiB, " + u.sysname +
         " " + u.release + ", SQLite " + sqlite3_libversion();
}

constexpr const char* kErrorBars = "median; bars: fastest to slowest run";

// One line per backend and path: through SQL (solid) and the raw C baseline (dashed), in the backend's colour.
// `value` turns a result into a point (or nothing, to skip it).
template <typename Value>
std::vector<Series> backend_series(const std::vector<Result>& results, const Dataset& d, const std::string& measure, bool with_raw, Value value) {
  std::vector<Series> out;
  for (const bool raw : {false, true}) {
    if (raw && !with_raw) continue;
    std::map<std::string, std::size_t> index;
    for (const auto& r : results) {
      if (r.dataset != d.key || r.measure != measure) continue;
      if (!index.contains(r.backend)) {
        index[r.backend] = out.size();
        out.push_back({r.backend + (raw ? " (raw C)" : " (SQL)"), backend_color(r.backend), raw, {}, backend_point(r.backend, raw)});
      }
      out[index[r.backend]].points.push_back(value(r, raw));
    }
  }
  // SQL and raw C of a backend next to each other in the legend, backends in the order run.
  const auto rank = [&](const Series& s) { return std::find_if(out.begin(), out.end(), [&](const Series& o) { return o.color == s.color; }) - out.begin(); };
  std::vector<std::pair<long, Series>> ranked;
  for (const auto& s : out) ranked.emplace_back(rank(s), s);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = ranked[i].second;
  return out;
}

PlotPoint time_point(const Result& r, bool raw, bool per_image) {
  const Timing& t = raw ? r.raw : r.sql;
  const double k = per_image ? static_cast<double>(std::max<std::int64_t>(r.n, 1)) : 1;
  return {static_cast<double>(r.n), t.median() / k, t.min() / k, t.max() / k};
}

LinePlot time_plot(const std::vector<Result>& results, const Dataset& d, const std::string& measure, const std::string& title, bool per_image) {
  LinePlot p;
  p.title = title;
  p.xlabel = "images in the store";
  p.ylabel = per_image ? "time per image" : std::string("time (") + kErrorBars + ")";
  p.series = backend_series(results, d, measure, true, [&](const Result& r, bool raw) { return time_point(r, raw, per_image); });
  return p;
}

LinePlot disk_plot(const std::vector<Result>& results, const Dataset& d) {
  LinePlot p;
  p.title = "Disk usage: bytes allocated on disk by a store of n images - " + d.key;
  p.xlabel = "images in the store";
  p.ylabel = "allocated on disk";
  p.log_x = p.log_y = false;
  p.y_unit = Unit::bytes;
  // Through SQL only: the raw C stores take the same space within a few KiB (see the table).
  p.series = backend_series(results, d, "disk_usage", false, [](const Result& r, bool raw) {
    const auto bytes = static_cast<double>(raw ? r.raw_allocated : r.allocated);
    return PlotPoint{static_cast<double>(r.n), bytes, bytes, bytes};
  });
  // Stores of the same size draw the same line: each one drawn thinner than the one before stays visible.
  for (std::size_t i = 0; i < p.series.size(); ++i) p.series[i].line_width = 2 + 2.5 * static_cast<double>(p.series.size() - 1 - i);
  return p;
}

BarPlot store_one_plot(const std::vector<Result>& results, const Dataset& d) {
  BarPlot bars;
  bars.title = "Store one image in a new store - " + d.key;
  bars.ylabel = std::string("time (") + kErrorBars + ")";
  bars.groups = {"through SQL", "raw C baseline"};
  for (const auto& r : results) {
    if (r.dataset != d.key || r.measure != "store_one") continue;
    bars.bars.push_back({r.backend, backend_color(r.backend), {time_point(r, false, false), time_point(r, true, false)}});
  }
  return bars;
}

void plots(const std::vector<Result>& results, const Dataset& d, const std::string& out, std::vector<std::string>& files) {
  const auto line = [&](const std::string& measure, const std::string& question) {
    const std::string file = d.key + "_" + measure + ".png";
    draw(time_plot(results, d, measure, question + " - " + d.key, false), out + "/" + file);
    files.push_back(file);
  };
  line("store_many", "Store many: n images into a new store, one transaction");
  line("read_many_warm", "Read many, warm: every image of a store of n, page cache warm");
  line("read_many_cold", "Read many, cold: every image of a store of n, page cache dropped");
  line("read_one", "Read one: the middle image by id, from a store of n");
  files.push_back(d.key + "_disk_usage.png");
  draw(disk_plot(results, d), out + "/" + files.back());
  files.push_back(d.key + "_time_per_image.png");
  draw_panels("Time per image when storing or reading n images - " + d.key + " (" + kErrorBars + ")",
              {time_plot(results, d, "store_many", "store many", true), time_plot(results, d, "read_many_cold", "read many, cold", true),
               time_plot(results, d, "read_many_warm", "read many, warm", true)},
              out + "/" + files.back());
  files.push_back(d.key + "_store_one.png");
  draw(store_one_plot(results, d), out + "/" + files.back());
}

// A README-ready cell: "699 ms (1.16 s, 0.60x)", the ratio "≈1x" when the runs overlap and a mark when noisy.
std::string summary_cell(const Result& r) {
  const bool overlap = ratio_within_noise(r.sql, r.raw);
  std::string ratio = overlap ? "\u22481x" : fixed(r.sql.median() / std::max(r.raw.median(), 1e-12), "%.2fx");
  const bool shaky = noisy(r.sql) || noisy(r.raw);
  return human_seconds(r.sql.median()) + " (" + human_seconds(r.raw.median()) + ", " + ratio + ")" + (shaky ? " \u26a0" : "");
}

void write_summary(std::ostream& md, const Dataset& d, const std::vector<Result>& results) {
  std::int64_t largest = 0;
  for (const auto& r : results) {
    if (r.dataset == d.key && r.measure == "store_many") largest = std::max(largest, r.n);
  }
  const std::string n = grouped(largest);
  Table t;
  t.header = {"backend", "store one", "store " + n, "read one of " + n, "read " + n + " cold", "read " + n + " warm", "on disk"};
  t.numeric = {false, true, true, true, true, true, true};
  std::map<std::string, std::size_t> row_of;
  for (const auto& r : results) {
    if (r.dataset != d.key || (r.n != largest && r.measure != "store_one")) continue;
    if (!row_of.contains(r.backend)) {
      row_of[r.backend] = t.rows.size();
      t.rows.push_back({r.backend, "", "", "", "", "", ""});
    }
    auto& row = t.rows[row_of[r.backend]];
    const std::vector<std::string> order = {"store_one", "store_many", "read_one", "read_many_cold", "read_many_warm"};
    const auto at = std::find(order.begin(), order.end(), r.measure);
    if (at != order.end()) row[1 + static_cast<std::size_t>(at - order.begin())] = summary_cell(r);
    if (r.measure == "disk_usage") row[6] = human_bytes(static_cast<double>(r.allocated));
  }
  md << "### Summary at " << n << " images\n\nMedians through SQL; in brackets the raw C baseline's median and the ratio "
        "SQL / raw C. \u22481x: the SQL and raw C runs overlap, so no difference is shown; \u26a0: noisy (a slowest run "
        "over 1.5 times the fastest), not a finding.\n\n";
  write_markdown(md, t);
}

void write_times(std::ostream& md, const Dataset& d, const std::vector<Result>& results) {
  Table t;
  t.header = {"backend", "measure", "images", "runs", "SQL: median (min-max)", "raw C: median (min-max)", "ratio", "warning"};
  t.numeric = {false, false, true, true, true, true, true, false};
  for (const auto& r : results) {
    if (r.dataset != d.key || r.measure == "disk_usage") continue;
    t.rows.push_back({r.backend, r.measure, std::to_string(r.n), std::to_string(r.sql.runs()), human_range(r.sql), human_range(r.raw),
                      fixed(r.sql.median() / std::max(r.raw.median(), 1e-12), "%.2fx"), warnings(r)});
  }
  md << "### Times\n\n";
  write_markdown(md, t);
}

void write_disk(std::ostream& md, const Dataset& d, const std::vector<Result>& results) {
  Table du;
  du.header = {"backend", "images", "allocated (SQL store)", "file bytes", "allocated (raw store)", "per image"};
  du.numeric = {false, true, true, true, true, true};
  for (const auto& r : results) {
    if (r.dataset != d.key || r.measure != "disk_usage") continue;
    du.rows.push_back({r.backend, std::to_string(r.n), human_bytes(static_cast<double>(r.allocated)), human_bytes(static_cast<double>(r.file_bytes)),
                       human_bytes(static_cast<double>(r.raw_allocated)),
                       human_bytes(static_cast<double>(r.allocated) / static_cast<double>(std::max<std::int64_t>(r.n, 1)))});
  }
  md << "\n### Disk usage\n\n";
  write_markdown(md, du);
}

void write_report(const ReportOptions& o, const std::vector<Dataset>& datasets, const std::vector<Result>& results,
                  double seconds, const std::vector<std::string>& plot_files) {
  std::ofstream md(o.out_dir + "/report.md");
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  md << "# imgstore experiments\n\n";
  md << "Run " << date << " on " << machine_line() << "; " << (o.quick ? "quick run" : "full run") << ", "
     << fixed(seconds, "%.0f") << " s in all.\n\n";
  if (o.quick) {
    md << "**A quick run**: small counts only, where most figures are a few microseconds and dominated by noise. It shows "
          "that everything works; for numbers to quote, run the full report (`scripts/run`).\n\n";
  }
  md << "Every figure is the median of " << kRuns << " runs (" << kOneRuns << " for one image), each into new stores, with "
        "the fastest and slowest run beside it. `SQL` is the extension through SQLite (the scripts in sql/); `raw C` is "
        "the backend's C library doing the same work in the same run (bench/raw_baselines.cpp); `ratio` = SQL / raw C. A "
        "figure is marked noisy when its slowest run took over 1.5 times its fastest, and a ratio is no finding when the "
        "SQL and raw C runs overlap. Every read is verified: the SQL scripts check the store against its source with "
        "image_digest(), and the raw read's digest must equal the SQL read's. Cold reads drop the OS page cache first "
        "when the run may (root). Sizes are binary (1 KiB = 1,024 bytes, 1 MiB = 1,024 KiB).\n\n";
  md << "Data sets:\n\n";
  for (const auto& d : datasets) md << "- **" << d.key << "**: " << d.label << "\n";
  md << "\n";
  for (const auto& d : datasets) {
    md << "## " << d.label << "\n\n";
    write_summary(md, d, results);
    md << "\n";
    write_times(md, d, results);
    write_disk(md, d, results);
    md << "\n### Plots\n\n";
    for (const auto& f : plot_files) {
      if (f.rfind(d.key + "_", 0) == 0) md << "![" << f << "](" << f << ")\n\n";
    }
  }
}

}  // namespace

int run_report(const ReportOptions& options) {
  ReportOptions o = options;
  if (o.counts.empty()) {
    o.counts = o.quick ? std::vector<std::int64_t>{10, 100, 1000} : std::vector<std::int64_t>{10, 100, 1000, 10000, 100000};
  }
  if (o.scratch.empty()) o.scratch = o.out_dir + "/stores";
  fs::create_directories(o.out_dir);
  remove_store(o.scratch);
  std::vector<Dataset> datasets = {{"fashion-mnist", kFashionMnist,
                                    "Fashion-MNIST (Debian's dataset-fashion-mnist, real 28x28x1 images; the first 50,000 "
                                    "training images, repeated to reach 100,000)"}};
  if (!o.cifar.empty()) {
    datasets.push_back({"cifar10", o.cifar, "CIFAR-10 (" + o.cifar + ", 32x32x3; its 50,000 training images, repeated to reach 100,000)"});
  } else {
    datasets.push_back({"synthetic-32x32x3", "smooth",
                        "synthetic smooth 32x32x3 images (CIFAR-10's shape, NOT CIFAR-10: gradients, waves and a little "
                        "noise, which compress like photos; pass --cifar DIR to use the real data set)"});
  }
  const double start = now_seconds();
  Runner runner(o, datasets.size());
  runner.run(datasets);
  const double seconds = now_seconds() - start;
  const Table table = results_table(runner.results);
  std::ofstream csv(o.out_dir + "/results.csv");
  write_csv(csv, table);
  std::ofstream json(o.out_dir + "/results.json");
  write_json(json, table);
  std::vector<std::string> plot_files;
  for (const auto& d : datasets) plots(runner.results, d, o.out_dir, plot_files);
  write_report(o, datasets, runner.results, seconds, plot_files);
  remove_store(o.scratch);
  std::cout << "wrote " << o.out_dir << "/report.md, results.csv, results.json and " << plot_files.size() << " plots in "
            << fixed(seconds, "%.0f") << " s\n";
  return 0;
}

}  // namespace imgbench
