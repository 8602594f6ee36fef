// The report's text: report.md (summary, times, threads, random batch, disk usage) and the results table
// behind results.csv and results.json.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <map>

#include <sqlite3.h>

#include "report_results.hpp"

namespace imgbench::report {

namespace {

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

// The largest count of a data set's store_many results.
std::int64_t largest_count(const Dataset& d, const std::vector<Result>& results) {
  std::int64_t largest = 0;
  for (const auto& r : results) {
    if (r.dataset == d.key && r.measure == "store_many") largest = std::max(largest, r.n);
  }
  return largest;
}

const Result* find(const std::vector<Result>& results, const Dataset& d, const std::string& backend, const std::string& measure,
                   std::int64_t n, unsigned threads) {
  for (const auto& r : results) {
    if (r.dataset == d.key && r.backend == backend && r.measure == measure && r.n == n && r.threads == threads) return &r;
  }
  return nullptr;
}

// A README-ready cell: "699 ms (1.16 s, 0.60x)", the ratio "≈1x" when the runs overlap and a mark when noisy.
std::string summary_cell(const Result& r) {
  const bool overlap = ratio_within_noise(r.sql, r.raw);
  std::string ratio = overlap ? "\u22481x" : fixed(r.sql.median() / std::max(r.raw.median(), 1e-12), "%.2fx");
  const bool shaky = noisy(r.sql) || noisy(r.raw);
  return human_seconds(r.sql.median()) + " (" + human_seconds(r.raw.median()) + ", " + ratio + ")" + (shaky ? " \u26a0" : "");
}

void write_summary(std::ostream& md, const Dataset& d, const std::vector<Result>& results) {
  const std::int64_t largest = largest_count(d, results);
  const std::string n = grouped(largest);
  Table t;
  t.header = {"backend", "store one", "store " + n, "read one of " + n, "read " + n + " cold", "read " + n + " warm", "on disk"};
  t.numeric = {false, true, true, true, true, true, true};
  std::map<std::string, std::size_t> row_of;
  for (const auto& r : results) {
    if (r.dataset != d.key || r.threads != 1 || (r.n != largest && r.measure != "store_one")) continue;
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
  t.header = {"backend", "measure", "threads", "images", "runs", "SQL: median (min-max)", "raw C: median (min-max)", "ratio",
              "native SQLite: median", "SQL / native", "warning"};
  t.numeric = {false, false, true, true, true, true, true, true, true, true, false};
  for (const auto& r : results) {
    if (r.dataset != d.key || r.measure == "disk_usage") continue;
    t.rows.push_back({r.backend, r.measure, std::to_string(r.threads), std::to_string(r.n), std::to_string(r.sql.runs()),
                      human_range(r.sql), human_range(r.raw), fixed(r.sql.median() / std::max(r.raw.median(), 1e-12), "%.2fx"),
                      r.native.empty() ? "" : human_seconds(r.native.median()), ratio_text(r.sql, r.native), warnings(r)});
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

// "1.23 s (0.95x raw, 1.10x native)"
std::string threads_cell(const Result* r) {
  if (r == nullptr || r->sql.empty()) return "";
  return human_seconds(r->sql.median()) + " (" + ratio_text(r->sql, r->raw) + " raw, " + ratio_text(r->sql, r->native) + " native)" +
         (noisy(r->sql) ? " \u26a0" : "");
}

// threads=1 and threads=N side by side for store and scan, each against the single-threaded raw C loop and a
// native SQLite table of the same run.
void write_threads(std::ostream& md, const Dataset& d, const std::vector<Result>& results) {
  const std::int64_t n = largest_count(d, results);
  unsigned threads_n = 1;
  for (const auto& r : results) threads_n = std::max(threads_n, r.dataset == d.key ? r.threads : 1u);
  Table t;
  const std::string many = "threads=" + std::to_string(threads_n);
  t.header = {"backend", "measure", "threads=1", many, many + " / threads=1"};
  t.numeric = {false, false, true, true, true};
  std::vector<std::string> backends;
  for (const auto& r : results) {
    if (r.dataset == d.key && std::find(backends.begin(), backends.end(), r.backend) == backends.end()) backends.push_back(r.backend);
  }
  for (const auto& backend : backends) {
    for (const char* measure : {"store_many", "read_many_warm", "read_many_cold"}) {
      const Result* one = find(results, d, backend, measure, n, 1);
      const Result* par = threads_n > 1 ? find(results, d, backend, measure, n, threads_n) : nullptr;
      if (one == nullptr) continue;
      t.rows.push_back({backend, measure, threads_cell(one), par ? threads_cell(par) : "(one core: not run)",
                        par ? ratio_text(par->sql, one->sql) : ""});
    }
  }
  md << "\n### Threads at " << grouped(n) << " images\n\nThe store's `threads` argument: 1 and the machine's cores, each "
        "SQL median with its ratio to the raw C loop (one thread) and to a native SQLite table (id INTEGER PRIMARY KEY, "
        "label, pixels) doing the same work in the same run. The last column below 1 means the threads helped.\n\n";
  write_markdown(md, t);
}

// The ML access pattern: batches of 256 random ids, each read with `id IN (...)`, in images per second.
void write_random_batch(std::ostream& md, const Dataset& d, const std::vector<Result>& results) {
  Table t;
  t.header = {"backend", "images in the store", "images read", "SQL images/s", "raw C images/s", "native SQLite images/s", "SQL / raw C",
              "SQL / native", "warning"};
  t.numeric = {false, true, true, true, true, true, true, true, false};
  const auto rate = [](const Result& r, const Timing& t) {
    return t.empty() || t.median() <= 0 ? std::string() : grouped(static_cast<long long>(static_cast<double>(r.images) / t.median()));
  };
  for (const auto& r : results) {
    if (r.dataset != d.key || r.measure != "random_batch") continue;
    t.rows.push_back({r.backend, std::to_string(r.n), grouped(r.images), rate(r, r.sql), rate(r, r.raw), rate(r, r.native),
                      ratio_text(r.sql, r.raw), ratio_text(r.sql, r.native), warnings(r)});
  }
  md << "\n### Random batches (the ML access pattern)\n\nsql/random_batch.sql: max(1, n / 256) batches of 256 ids drawn "
        "from a seeded generator (the same ids for every path), each batch one `id IN (...)`, warm. raw C: the backend's "
        "library reading the same ids (mdb_get, an H5Dread per row, a libpng decode per file); native: a SQLite table, "
        "`id IN (SELECT value FROM json_each(?))` per batch. Ratios are of times (below 1: SQL faster).\n\n";
  write_markdown(md, t);
}

}  // namespace

Table results_table(const std::vector<Result>& results) {
  Table t;
  t.header = {"dataset", "backend", "measure", "images", "runs", "sql_median_s", "sql_min_s", "sql_max_s",
              "raw_median_s", "raw_min_s", "raw_max_s", "ratio", "allocated_bytes", "file_bytes", "raw_allocated_bytes", "warning",
              "threads", "native_median_s", "ratio_native", "images_read"};
  t.numeric = {false, false, false, true, true, true, true, true, true, true, true, true, true, true, true, false, true, true, true, true};
  for (const auto& r : results) {
    const bool timed = !r.sql.empty();
    const auto num = [](std::int64_t v) { return v < 0 ? std::string() : std::to_string(v); };
    t.rows.push_back({r.dataset, r.backend, r.measure, std::to_string(r.n), timed ? std::to_string(r.sql.runs()) : "",
                      timed ? fixed(r.sql.median()) : "", timed ? fixed(r.sql.min()) : "", timed ? fixed(r.sql.max()) : "",
                      timed ? fixed(r.raw.median()) : "", timed ? fixed(r.raw.min()) : "", timed ? fixed(r.raw.max()) : "",
                      timed && r.raw.median() > 0 ? fixed(r.sql.median() / r.raw.median(), "%.3f") : "", num(r.allocated),
                      num(r.file_bytes), num(r.raw_allocated), warnings(r), std::to_string(r.threads),
                      r.native.empty() ? "" : fixed(r.native.median()),
                      r.native.empty() || r.native.median() <= 0 ? "" : fixed(r.sql.median() / r.native.median(), "%.3f"),
                      r.measure == "random_batch" ? std::to_string(r.images) : ""});
  }
  return t;
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
        "when the run may (root: sync, then 3 into /proc/sys/vm/drop_caches: pages, dentries and inodes) after the store is opened, for the SQL, raw C and native reads alike. Sizes are binary (1 KiB = 1,024 bytes, 1 MiB = 1,024 KiB).\n\n";
  md << "Data sets:\n\n";
  for (const auto& d : datasets) md << "- **" << d.key << "**: " << d.label << "\n";
  md << "\n";
  for (const auto& d : datasets) {
    md << "## " << d.label << "\n\n";
    write_summary(md, d, results);
    md << "\n";
    write_times(md, d, results);
    write_threads(md, d, results);
    write_random_batch(md, d, results);
    write_disk(md, d, results);
    md << "\n### Plots\n\n";
    for (const auto& f : plot_files) {
      if (f.rfind(d.key + "_", 0) == 0) md << "![" << f << "](" << f << ")\n\n";
    }
  }
}

}  // namespace imgbench::report
