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

struct Dataset {
  std::string key;    // file-name friendly
  std::string name;   // dataset() name
  std::string label;  // for people
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

class Runner {
 public:
  Runner(const ReportOptions& o) : o_(o), session_(o.extension), progress_(o.progress) {
    session_.on_progress = [this](const std::string& what, double elapsed) {
      progress_.show(step_, total_, current_ + " " + what, elapsed);
    };
  }

  std::vector<Result> results;

  void run(const std::vector<Dataset>& datasets) {
    total_ = static_cast<int>(datasets.size() * o_.backends.size() * (o_.counts.size() + 1));
    for (const auto& d : datasets) {
      for (const auto& backend : o_.backends) {
        store_one(d, backend);
        for (const auto n : o_.counts) many(d, backend, n);
      }
    }
    progress_.clear();
  }

 private:
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
    session_.set_text_param("@source", d.name);
    session_.set_text_param("@shape", shape_);
    session_.set_param("@n", std::to_string(n));
    session_.set_param("@id", std::to_string(n / 2));
  }

  raw::Images load(const Dataset& d, std::int64_t n) {
    raw::Images images;
    const Statement stmt = prepare(session_.db(), "SELECT id, label, pixels FROM dataset(?1, ?2)");
    sqlite3_bind_text(stmt.get(), 1, d.name.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt.get(), 2, n);
    int rc;
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      images.ids.push_back(sqlite3_column_int64(stmt.get(), 0));
      images.labels.push_back(sqlite3_column_int64(stmt.get(), 1));
      const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt.get(), 2));
      images.pixels.insert(images.pixels.end(), p, p + sqlite3_column_bytes(stmt.get(), 2));
    }
    if (rc != SQLITE_DONE) throw std::runtime_error("reading data set " + d.name + ": " + sqlite3_errmsg(session_.db()));
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

  void begin_step(const Dataset& d, const std::string& backend, const std::string& what) {
    ++step_;
    current_ = d.key + " " + backend + " " + what;
    progress_.show(step_, total_, current_, 0);
    session_.set_text_param("@probe", d.name);  // bound, not spliced: a --cifar path may hold a quote
    shape_ = session_.query_text("SELECT dataset_shape(@probe)");
  }

  void store_one(const Dataset& d, const std::string& backend) {
    begin_step(d, backend, "store one");
    const raw::Images one = load(d, 1);
    Result r{d.key, backend, "store_one", 1, {}, {}, "", -1, -1, -1};
    for (int k = 0; k < 5; ++k) {
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

  void many(const Dataset& d, const std::string& backend, std::int64_t n) {
    begin_step(d, backend, "n=" + std::to_string(n));
    const raw::Images images = load(d, n);
    const int repeats = n <= 10000 ? 3 : 1;
    Result store{d.key, backend, "store_many", n, {}, {}, "", -1, -1, -1};
    std::string sql_path;
    std::string raw_path;
    for (int k = 0; k < repeats; ++k) {
      if (k > 0) {
        remove_store(sql_path);
        remove_store(raw_path);
      }
      sql_path = store_path(d, backend, "many-sql", n, k);
      raw_path = store_path(d, backend, "many-raw", n, k);
      params(d, backend, sql_path, n);
      ::sync();  // no measurement pays for an earlier one's writeback
      store.sql.samples.push_back(measured("store_many", "store_many").seconds);
      ::sync();
      const auto raw_store = raw::create(backend, raw_path, images);
      const double start = now_seconds();
      raw_store->write(images);
      store.raw.samples.push_back(now_seconds() - start);
    }
    params(d, backend, sql_path, n);

    // Disk usage of both stores.
    Result usage{d.key, backend, "disk_usage", n, {}, {}, "", -1, -1, -1};
    const auto du = measured("disk_usage", "disk_usage");
    std::sscanf(du.first_row.c_str(), "%lld|%lld", reinterpret_cast<long long*>(&usage.allocated),
                reinterpret_cast<long long*>(&usage.file_bytes));
    usage.raw_allocated = allocated_bytes(session_, raw_path);

    // Read one (the middle image), 5 times each.
    Result one{d.key, backend, "read_one", n, {}, {}, "", -1, -1, -1};
    for (int k = 0; k < 5; ++k) {
      one.sql.samples.push_back(measured("read_one", "read_one").seconds);
      const auto raw_store = raw::open(backend, raw_path, images);
      const double start = now_seconds();
      const raw::Digest got = raw_store->read_one(n / 2);
      one.raw.samples.push_back(now_seconds() - start);
      if (got.count != 1) throw std::runtime_error("raw read_one of " + raw_path + " found no image " + std::to_string(n / 2));
    }

    // Read many: cold (page cache dropped when allowed) then warm, SQL and raw, digests compared.
    Result cold{d.key, backend, "read_many_cold", n, {}, {}, "", -1, -1, -1};
    Result warm{d.key, backend, "read_many_warm", n, {}, {}, "", -1, -1, -1};
    for (int k = 0; k < repeats; ++k) {
      const auto runs = session_.run_script(script("read_many"));
      std::string sql_digest;
      for (const auto& run : runs) {
        if (run.label != "read_many") continue;
        if (run.cold) {
          cold.sql.samples.push_back(run.seconds);
          cold.note = run.cache_dropped ? "page cache dropped" : "page cache NOT dropped (needs root): first read";
        } else {
          warm.sql.samples.push_back(run.seconds);
          sql_digest = run.first_row;
        }
      }
      // As in read_many.sql: the store is opened, then the page cache dropped, then read.
      const auto raw_store = raw::open(backend, raw_path, images);
      drop_page_cache();
      double start = now_seconds();
      raw_store->read_all();
      cold.raw.samples.push_back(now_seconds() - start);
      start = now_seconds();
      const raw::Digest got = raw_store->read_all();
      warm.raw.samples.push_back(now_seconds() - start);
      if (got.text() != sql_digest) {
        throw std::runtime_error("verification failed: " + backend + " n=" + std::to_string(n) + ": SQL read " + sql_digest +
                                 ", raw read " + got.text());
      }
    }
    for (auto* r : {&store, &one, &cold, &warm, &usage}) results.push_back(*r);
    remove_store(sql_path);
    remove_store(raw_path);
  }

  const ReportOptions& o_;
  Session session_;
  Progress progress_;
  int step_ = 0;
  int total_ = 0;
  std::string current_;
  std::string shape_;
};

Table results_table(const std::vector<Result>& results) {
  Table t;
  t.header = {"dataset", "backend", "measure", "images", "repeats", "sql_median_s", "sql_min_s", "sql_max_s",
              "raw_median_s", "raw_min_s", "raw_max_s", "ratio", "allocated_bytes", "file_bytes", "raw_allocated_bytes", "note"};
  t.numeric = {false, false, false, true, true, true, true, true, true, true, true, true, true, true, true, false};
  for (const auto& r : results) {
    const bool timed = !r.sql.empty();
    const auto num = [](std::int64_t v) { return v < 0 ? std::string() : std::to_string(v); };
    t.rows.push_back({r.dataset, r.backend, r.measure, std::to_string(r.n), std::to_string(r.sql.samples.size()),
                      timed ? fixed(r.sql.median()) : "", timed ? fixed(r.sql.min()) : "", timed ? fixed(r.sql.max()) : "",
                      timed ? fixed(r.raw.median()) : "", timed ? fixed(r.raw.min()) : "", timed ? fixed(r.raw.max()) : "",
                      timed && r.raw.median() > 0 ? fixed(r.sql.median() / r.raw.median(), "%.3f") : "", num(r.allocated),
                      num(r.file_bytes), num(r.raw_allocated), r.note});
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

void plots(const std::vector<Result>& results, const Dataset& d, const std::string& out, std::vector<std::string>& files) {
  const auto series_of = [&](const std::string& measure, bool with_raw, bool bytes) {
    LinePlot p;
    for (const auto& r : results) {
      if (r.dataset != d.key || r.measure != measure) continue;
      if (bytes) {
        p.series[r.backend].push_back({static_cast<double>(r.n), static_cast<double>(r.allocated) / 1e6});
      } else {
        p.series[r.backend + " (SQL)"].push_back({static_cast<double>(r.n), r.sql.median()});
        if (with_raw) p.series[r.backend + " (raw C)"].push_back({static_cast<double>(r.n), r.raw.median()});
      }
    }
    return p;
  };
  const auto line = [&](const std::string& measure, const std::string& title, bool bytes) {
    for (const bool log : {false, true}) {
      LinePlot p = series_of(measure, true, bytes);
      p.title = title + " - " + d.key + (log ? " (log axes)" : "");
      p.xlabel = "images";
      p.ylabel = bytes ? "MB allocated on disk" : "seconds (median)";
      p.log_axes = log;
      const std::string file = d.key + "_" + measure + (log ? "_log" : "_linear") + ".png";
      draw(p, out + "/" + file);
      files.push_back(file);
    }
  };
  line("store_many", "Store many images", false);
  line("read_many_warm", "Read many images (warm)", false);
  line("read_many_cold", "Read many images (cold)", false);
  line("disk_usage", "Disk usage", true);
  BarPlot bars;
  bars.title = "One image - " + d.key;
  bars.ylabel = "milliseconds (median)";
  std::int64_t largest = 0;
  for (const auto& r : results) {
    if (r.dataset == d.key && r.measure == "read_one") largest = std::max(largest, r.n);
  }
  for (const auto& r : results) {
    if (r.dataset != d.key) continue;
    const bool store = r.measure == "store_one";
    const bool read = r.measure == "read_one" && r.n == largest;
    if (!store && !read) continue;
    if (std::find(bars.groups.begin(), bars.groups.end(), r.backend) == bars.groups.end()) bars.groups.push_back(r.backend);
    const std::string what = store ? "store one" : "read one of " + std::to_string(largest);
    bars.bars[what + " (SQL)"].push_back(r.sql.median() * 1e3);
    bars.bars[what + " (raw C)"].push_back(r.raw.median() * 1e3);
  }
  const std::string file = d.key + "_one_image.png";
  draw(bars, out + "/" + file);
  files.push_back(file);
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
  md << "Each time is the median of its repeats (store/read many: 3 up to 10,000 images, 1 at 100,000; one image: 5). "
        "`SQL` is the extension through SQLite (the scripts in sql/); `raw C` is the backend's C library doing the same "
        "work in the same run (bench/raw_baselines.cpp); `ratio` = SQL / raw C. Every read is verified: the SQL "
        "scripts check the store against its source with image_digest(), and the raw read's digest must equal the SQL "
        "read's. Cold reads drop the OS page cache first when the run may (root).\n\n";
  md << "Data sets:\n\n";
  for (const auto& d : datasets) md << "- **" << d.key << "**: " << d.label << "\n";
  md << "\n";
  for (const auto& d : datasets) {
    md << "## " << d.label << "\n\n";
    Table t;
    t.header = {"backend", "measure", "images", "SQL", "raw C", "ratio", "note"};
    t.numeric = {false, false, true, true, true, true, false};
    Table du;
    du.header = {"backend", "images", "allocated (SQL store)", "file bytes", "allocated (raw store)", "per image"};
    du.numeric = {false, true, true, true, true, true};
    for (const auto& r : results) {
      if (r.dataset != d.key) continue;
      if (r.measure == "disk_usage") {
        du.rows.push_back({r.backend, std::to_string(r.n), human_bytes(static_cast<double>(r.allocated)),
                           human_bytes(static_cast<double>(r.file_bytes)), human_bytes(static_cast<double>(r.raw_allocated)),
                           human_bytes(static_cast<double>(r.allocated) / static_cast<double>(std::max<std::int64_t>(r.n, 1)))});
        continue;
      }
      t.rows.push_back({r.backend, r.measure, std::to_string(r.n), human_seconds(r.sql.median()), human_seconds(r.raw.median()),
                        fixed(r.sql.median() / std::max(r.raw.median(), 1e-12), "%.2fx"), r.note});
    }
    md << "### Times\n\n";
    write_markdown(md, t);
    md << "\n### Disk usage\n\n";
    write_markdown(md, du);
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
  std::vector<Dataset> datasets = {{"fashion-mnist", "fashion-mnist",
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
  Runner runner(o);
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
