#include "report.hpp"

// The report's runs: every experiment on every backend and count, the raw C baselines and a native SQLite
// table beside it (report_markdown.cpp and report_plots.cpp write what it measured).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "progress.hpp"
#include "raw_baselines.hpp"
#include "report_results.hpp"
#include "session.hpp"

namespace imgbench {

namespace {

namespace fs = std::filesystem;

// The report's data sets: where they live and how they repeat is the experiments' policy, kept here.
constexpr const char* kFashionMnist = "/usr/share/datasets/fashion-mnist";
constexpr std::int64_t kRepeatEvery = 50000;  // the original comparison repeated CIFAR-10's 50,000 training images

using report::Dataset;
using report::Result;
using report::kRuns;
using report::kOneRuns;
using report::fixed;

constexpr std::int64_t kBatch = 256;  // random_batch: ids per batch, as a data loader's batch

// The store's threads for the threads=N runs: the machine's cores (1 on one core: no second run).
unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }

std::string extension_of(const std::string& backend) {
  if (backend == "lmdb") return ".lmdb";
  if (backend == "hdf5") return ".h5";
  return "";
}

void remove_store(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::remove_all(path, ec);
  fs::remove(path + "-lock", ec);  // a single-file lmdb store of an earlier version
}

std::int64_t allocated_bytes(Session& s, const std::string& path) {
  s.set_text_param("@probe", path);
  return std::stoll(s.query_text("SELECT disk_usage(@probe)"));
}

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
    session_.set_param("@threads", "1");
    // Set every time: the scripts only fill in defaults, which would otherwise stay from an earlier count.
    session_.set_param("@batch", std::to_string(kBatch));
    session_.set_param("@batches", std::to_string(std::max<std::int64_t>(1, n / kBatch)));
    session_.set_param("@seed", "1");
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

  // `ext` empty: the backend's own.
  std::string store_path(const Dataset& d, const std::string& backend, const std::string& kind, std::int64_t n, int r,
                         const std::string& ext = "") const {
    const fs::path dir = fs::path(o_.scratch) / d.key / backend;
    fs::create_directories(dir);
    return (dir / (kind + "-n" + std::to_string(n) + "-r" + std::to_string(r) + (ext.empty() ? extension_of(backend) : ext))).string();
  }

  void begin_step(const Dataset& d, const std::string& backend, const std::string& what, std::int64_t n) {
    progress_.start(d.key + " " + backend + " " + what, weight(backend, n));
    session_.set_text_param("@probe", d.source);  // bound, not spliced: a --cifar path may hold a quote
    shape_ = session_.query_text("SELECT dataset_shape(@probe)");
  }

  void store_one(const Dataset& d, const std::string& backend) {
    begin_step(d, backend, "store one", 1);
    const raw::Images one = load(d, 1);
    Result r{d.key, backend, "store_one", 1, {}, {}, "", -1, -1, -1, {}, 1, 1};
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

  // The stores of one count, made kRuns times (each run into new stores); the last set is kept. `threaded`:
  // the SQL store made again with threads=N (empty when the machine has one core).
  struct Stores {
    std::string sql_path, raw_path, native_path, threaded;
  };

  // Stores through SQL (with `threads`) into a new store; returns the seconds of its INSERT.
  double sql_store(const Dataset& d, const std::string& backend, const std::string& path, std::int64_t n, unsigned threads) {
    params(d, backend, path, n);
    session_.set_param("@threads", std::to_string(threads));
    ::sync();  // no measurement pays for an earlier one's writeback
    return measured("store_many", "store_many").seconds;
  }

  // The raw C (or native SQLite, backend "sqlite") store of the same images; returns its seconds.
  static double raw_store(const std::string& backend, const std::string& path, const raw::Images& images) {
    ::sync();
    const auto store = raw::create(backend, path, images);
    const double start = now_seconds();
    store->write(images);
    return now_seconds() - start;
  }

  Stores store_many(const Dataset& d, const std::string& backend, const raw::Images& images, Result& store, Result& store_n) {
    const auto n = static_cast<std::int64_t>(images.n());
    Stores s;
    for (int k = 0; k < kRuns; ++k) {
      if (k > 0) {
        for (const auto* p : {&s.sql_path, &s.raw_path, &s.native_path, &s.threaded}) remove_store(*p);
      }
      s = {store_path(d, backend, "many-sql", n, k), store_path(d, backend, "many-raw", n, k),
           store_path(d, backend, "many-native", n, k, ".db"), ""};
      store.sql.samples.push_back(sql_store(d, backend, s.sql_path, n, 1));
      if (store_n.threads > 1) {
        s.threaded = store_path(d, backend, "many-threads", n, k);
        store_n.sql.samples.push_back(sql_store(d, backend, s.threaded, n, store_n.threads));
      }
      store.raw.samples.push_back(raw_store(backend, s.raw_path, images));
      store.native.samples.push_back(raw_store("sqlite", s.native_path, images));
    }
    store_n.raw = store.raw;
    store_n.native = store.native;
    params(d, backend, s.sql_path, n);
    session_.set_param("@threads", "1");
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

  // Every image through SQL with `threads`: cold (page cache dropped when allowed) then warm. Returns the
  // warm read's digest.
  std::string sql_read_many(unsigned threads, Result& cold, Result& warm) {
    session_.set_param("@threads", std::to_string(threads));
    std::string digest;
    for (const auto& run : session_.run_script(script("read_many"))) {
      if (run.label != "read_many") continue;
      if (run.cold) {
        cold.sql.samples.push_back(run.seconds);
        cold.note = run.cache_dropped ? "" : "page cache NOT dropped (needs root): first read";
      } else {
        warm.sql.samples.push_back(run.seconds);
        digest = run.first_row;
      }
    }
    session_.set_param("@threads", "1");
    return digest;
  }

  // A raw C (or native) full read: cold, as in read_many.sql (the store opened, then the page cache dropped,
  // then read), then warm. Returns the warm read's digest.
  static std::string raw_read_many(const std::string& backend, const std::string& path, const raw::Images& images, Timing& cold,
                                   Timing& warm) {
    const auto store = raw::open(backend, path, images);
    drop_page_cache();
    double start = now_seconds();
    store->read_all();
    cold.samples.push_back(now_seconds() - start);
    start = now_seconds();
    const raw::Digest got = store->read_all();
    warm.samples.push_back(now_seconds() - start);
    return got.text();
  }

  // Every image, SQL (threads=1 and threads=N on its own store), raw C and native, the digests compared.
  void read_many(const std::string& backend, const Stores& s, const raw::Images& images, Result (&r)[4]) {
    auto& [cold, warm, cold_n, warm_n] = r;
    const auto verify = [&](const std::string& what, const std::string& got, const std::string& want) {
      if (got == want) return;
      throw std::runtime_error("verification failed: " + backend + " n=" + std::to_string(images.n()) + ": SQL read " + want +
                               ", " + what + " read " + got);
    };
    for (int k = 0; k < kRuns; ++k) {
      const std::string sql_digest = sql_read_many(1, cold, warm);
      verify("raw", raw_read_many(backend, s.raw_path, images, cold.raw, warm.raw), sql_digest);
      verify("native SQLite", raw_read_many("sqlite", s.native_path, images, cold.native, warm.native), sql_digest);
      if (!s.threaded.empty()) {
        session_.set_text_param("@path", s.threaded);
        verify("threads=N", sql_read_many(warm_n.threads, cold_n, warm_n), sql_digest);
        session_.set_text_param("@path", s.sql_path);
      }
    }
    for (auto* t : {&cold_n, &warm_n}) t->note = cold.note;
    cold_n.raw = cold.raw, cold_n.native = cold.native, warm_n.raw = warm.raw, warm_n.native = warm.native;
  }

  // Batches of 256 random ids (sql/random_batch.sql), SQL then raw C then native, warm, the digests compared.
  void random_batch(const std::string& backend, const Stores& s, const raw::Images& images, Result& batch) {
    const auto n = static_cast<std::int64_t>(images.n());
    const auto batches = raw::random_batches(n, kBatch, std::max<std::int64_t>(1, n / kBatch), 1);
    for (const auto& b : batches) batch.images += static_cast<std::int64_t>(b.size());
    for (int k = 0; k < kRuns; ++k) {
      const StatementRun run = measured("random_batch", "random_batch");
      batch.sql.samples.push_back(run.seconds);
      for (const auto& [which, path, timing] : {std::tuple{backend, s.raw_path, &batch.raw}, std::tuple{std::string("sqlite"), s.native_path, &batch.native}}) {
        const auto store = raw::open(which, path, images);
        const double start = now_seconds();
        const raw::Digest got = raw::read_batches(*store, batches);
        timing->samples.push_back(now_seconds() - start);
        if (got.text() != run.first_row) {
          throw std::runtime_error("verification failed: random_batch " + backend + " n=" + std::to_string(images.n()) + ": SQL read " +
                                   run.first_row + ", " + which + " read " + got.text());
        }
      }
    }
  }

  void many(const Dataset& d, const std::string& backend, std::int64_t n) {
    begin_step(d, backend, "n=" + std::to_string(n), n);
    const raw::Images images = load(d, n);
    const auto result = [&](const char* measure, unsigned threads = 1) {
      Result r{d.key, backend, measure, n, {}, {}, "", -1, -1, -1, {}, threads, n};
      return r;
    };
    const unsigned threads_n = cores();
    Result store = result("store_many"), store_n = result("store_many", threads_n), usage = result("disk_usage");
    Result one = result("read_one"), batch = result("random_batch");
    batch.images = 0;
    Result reads[4] = {result("read_many_cold"), result("read_many_warm"), result("read_many_cold", threads_n),
                       result("read_many_warm", threads_n)};
    const Stores s = store_many(d, backend, images, store, store_n);
    disk_usage(s, usage);
    read_one(backend, s, images, one);
    read_many(backend, s, images, reads);
    random_batch(backend, s, images, batch);
    for (auto* r : {&store, &one, &reads[0], &reads[1], &usage, &batch}) results.push_back(*r);
    if (threads_n > 1) {
      for (auto* r : {&store_n, &reads[2], &reads[3]}) results.push_back(*r);
    }
    for (const auto* p : {&s.sql_path, &s.raw_path, &s.native_path, &s.threaded}) remove_store(*p);
  }

  const ReportOptions& o_;
  Session session_;
  Progress progress_;
  std::string shape_;
};

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
  const Table table = report::results_table(runner.results);
  std::ofstream csv(o.out_dir + "/results.csv");
  write_csv(csv, table);
  std::ofstream json(o.out_dir + "/results.json");
  write_json(json, table);
  std::vector<std::string> plot_files;
  for (const auto& d : datasets) report::plots(runner.results, d, o.out_dir, plot_files);
  report::write_report(o, datasets, runner.results, seconds, plot_files);
  remove_store(o.scratch);
  std::cout << "wrote " << o.out_dir << "/report.md, results.csv, results.json and " << plot_files.size() << " plots in "
            << fixed(seconds, "%.0f") << " s\n";
  return 0;
}

}  // namespace imgbench
