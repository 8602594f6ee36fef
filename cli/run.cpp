#include "run.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <tuple>

#include "output.hpp"
#include "plot.hpp"
#include "session.hpp"
#include "stats.hpp"

namespace imgbench {

namespace fs = std::filesystem;

namespace {

bool is_number(const std::string& text) {
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  return !text.empty() && end != nullptr && *end == '\0';
}

// One combination of the swept values: (name, value) for each --sweep, in the order given.
using Point = std::vector<std::pair<std::string, std::string>>;

// The cartesian product of the sweeps, the first sweep varying slowest; one empty point without sweeps.
std::vector<Point> product(const std::vector<SweepParam>& sweeps) {
  std::vector<Point> points = {{}};
  for (const auto& sweep : sweeps) {
    std::vector<Point> next;
    for (const auto& p : points) {
      for (const auto& v : sweep.values) {
        next.push_back(p);
        next.back().emplace_back(sweep.name, v);
      }
    }
    points = std::move(next);
  }
  return points;
}

// {NAME} of a swept parameter becomes its value in this run, {repeat} the run number and {tmp} the run's
// fresh scratch directory: -p "path='{tmp}/s-{n}.lmdb'".
std::string expand(std::string value, const Point& point, long long repeat, const std::string& tmp) {
  const auto replace_all = [&](const std::string& from, const std::string& to) {
    for (auto at = value.find(from); at != std::string::npos; at = value.find(from, at + to.size())) value.replace(at, from.size(), to);
  };
  for (const auto& [name, v] : point) replace_all("{" + name + "}", v);
  replace_all("{repeat}", std::to_string(repeat));
  replace_all("{tmp}", tmp);
  return value;
}

// A fresh directory under $TMPDIR for one imgbench run, removed with everything in it unless kept.
class Scratch {
 public:
  explicit Scratch(bool keep) : keep_(keep) {
    const char* const tmpdir = std::getenv("TMPDIR");
    std::string pattern = (tmpdir != nullptr && *tmpdir != '\0' ? std::string(tmpdir) : std::string("/tmp")) + "/imgbench-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("cannot make a scratch directory " + pattern);
    root_ = pattern;
  }
  ~Scratch() {
    std::error_code ec;
    if (keep_) {
      std::cerr << "imgbench: stores kept in " << root_.string() << "\n";
    } else {
      fs::remove_all(root_, ec);
    }
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  // A new empty directory for one run.
  std::string fresh(const std::string& name) const {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    return dir.string();
  }
  // Done with a run's directory: removed now, so a long sweep does not fill the disk.
  void done(const std::string& dir) const {
    std::error_code ec;
    if (!keep_) fs::remove_all(dir, ec);
  }

 private:
  fs::path root_;
  bool keep_;
};

std::string store_suffix(const std::string& backend) {
  if (backend == "lmdb") return ".lmdb";
  if (backend == "hdf5") return ".h5";
  return "";
}

// A measured statement of a script at one point of the sweep.
struct Key {
  std::string script;
  int index;
  std::size_t point;
  bool operator<(const Key& o) const { return std::tie(script, index, point) < std::tie(o.script, o.index, o.point); }
};

struct Figure {
  Timing timing;
  StatementRun last;  // the last run: its label, SQL, rows and result
};

class Bench {
 public:
  explicit Bench(const RunOptions& o)
      : o_(o), points_(product(o.sweeps)), session_(o.extension), scratch_(o.keep),
        progress_(o.progress, static_cast<int>(points_.size() * static_cast<std::size_t>(o.warmup + o.repeat)), total_weight()) {
    session_.on_progress = [this](const std::string& what, double elapsed) { progress_.running(what, elapsed); };
    session_.timeout = o.timeout;
  }

  void run() {
    for (long long r = -o_.warmup; r < o_.repeat; ++r) {
      for (std::size_t p = 0; p < points_.size(); ++p) one_run(p, r);
    }
    progress_.clear();
  }

  Table table(bool human) const;
  void plot() const;

 private:
  // The first numeric sweep is the x axis; a run's expected cost grows with it (n images).
  const SweepParam* x_axis() const {
    for (const auto& s : o_.sweeps) {
      if (s.numeric()) return &s;
    }
    return nullptr;
  }
  double weight(const Point& p) const {
    const SweepParam* x = x_axis();
    for (const auto& [name, v] : p) {
      if (x != nullptr && name == x->name) return 1 + std::fabs(std::strtod(v.c_str(), nullptr)) / 100;
    }
    return 1;
  }
  double total_weight() const {
    double w = 0;
    for (const auto& p : points_) w += weight(p);
    return w * static_cast<double>(o_.warmup + o_.repeat);
  }

  std::string describe(const Point& p, long long r) const {
    std::string text;
    for (const auto& s : o_.scripts) text += fs::path(s).filename().string() + " ";
    for (const auto& [name, v] : p) text += name + "=" + v + " ";
    return text + (r < 0 ? "warmup " + std::to_string(r + o_.warmup + 1) + "/" + std::to_string(o_.warmup)
                         : "run " + std::to_string(r + 1) + "/" + std::to_string(o_.repeat));
  }

  void set_params(const Point& p, long long r, const std::string& dir) {
    bool has_path = false;
    for (const auto& [name, value] : o_.params) {
      session_.set_param(name, expand(value, p, r, dir));
      has_path = has_path || name == "path" || name == "@path";
    }
    for (const auto& [name, value] : p) {
      session_.set_param(name, value);
      has_path = has_path || name == "path";
    }
    // By default every run stores into its own fresh directory, so a run never finds an earlier one's store.
    if (!has_path) session_.set_text_param("@path", dir + "/store" + store_suffix(session_.query_text("SELECT value FROM temp.sqlite_parameters WHERE key = '@backend'")));
  }

  // --prepare / --cleanup: SQL when it is complete SQL (ends with ';'), else a shell command (its output
  // goes to stderr, so that `--csv -` stays CSV).
  void hook(const std::string& option, const std::string& text, const Point& p, long long r, const std::string& dir) {
    if (text.empty()) return;
    const std::string expanded = expand(text, p, r, dir);
    if (sqlite3_complete(expanded.c_str()) != 0) {
      session_.run_text(expanded, option);
      return;
    }
    ::setenv("IMGBENCH_TMP", dir.c_str(), 1);
    const int status = std::system(("exec 1>&2\n" + expanded).c_str());
    if (status != 0) throw std::runtime_error(option + " '" + expanded + "' failed (status " + std::to_string(status) + ")");
  }

  void one_run(std::size_t point, long long r) {
    const Point& p = points_[point];
    progress_.start(describe(p, r), weight(p));
    const std::string dir = scratch_.fresh("p" + std::to_string(point) + (r < 0 ? "-warmup" + std::to_string(r + o_.warmup) : "-r" + std::to_string(r)));
    set_params(p, r, dir);
    hook("--prepare", o_.prepare, p, r, dir);
    for (const auto& script : o_.scripts) {
      for (auto& run : session_.run_script(script)) {
        if (r < 0 || (!o_.all && run.label.empty())) continue;
        const Key key{script, run.index, point};
        if (!figures_.contains(key)) order_.push_back(key);
        figures_[key].timing.samples.push_back(run.seconds);
        figures_[key].last = std::move(run);
      }
    }
    hook("--cleanup", o_.cleanup, p, r, dir);
    scratch_.done(dir);
  }

  const RunOptions& o_;
  const std::vector<Point> points_;
  Session session_;
  Scratch scratch_;
  Progress progress_;
  std::map<Key, Figure> figures_;
  std::vector<Key> order_;  // first appearance: scripts in the order given, then their statements

  void plot_statement(const std::string& script, int index, const std::string& file) const;
};

std::string statement_name(const StatementRun& run, bool human) {
  if (run.label.empty()) return human ? run.sql.substr(0, 48) : run.sql;
  return run.label + (run.cold ? (run.cache_dropped ? " (cold)" : " (first)") : "");
}

std::string seconds_cell(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%.6f", s);
  return text;
}

Table Bench::table(bool human) const {
  Table t;
  t.header = {"script", "statement"};
  for (const auto& s : o_.sweeps) t.header.push_back("@" + s.name);
  for (const char* h : {"runs", "rows", "min_s", "median_s", "max_s", "result", "warning"}) t.header.push_back(h);
  if (human) {
    for (std::size_t c = t.header.size() - 5; c < t.header.size() - 2; ++c) t.header[c].resize(t.header[c].size() - 2);
  }
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = t.numeric[1] = t.numeric[t.header.size() - 2] = t.numeric.back() = false;
  for (std::size_t c = 0; c < o_.sweeps.size(); ++c) t.numeric[2 + c] = o_.sweeps[c].numeric();
  for (const auto& key : order_) {
    const Figure& f = figures_.at(key);
    std::vector<std::string> row = {key.script, statement_name(f.last, human)};
    for (const auto& [name, v] : points_[key.point]) row.push_back(v);
    row.push_back(std::to_string(f.timing.runs()));
    row.push_back(std::to_string(f.last.rows));
    for (const double s : {f.timing.min(), f.timing.median(), f.timing.max()}) row.push_back(human ? human_seconds(s) : seconds_cell(s));
    row.push_back(human ? f.last.first_row.substr(0, 40) : f.last.first_row);
    row.push_back(noise_warning(f.timing));
    t.rows.push_back(row);
  }
  return t;
}

// One figure: a measured statement's time against the x axis, one line per combination of the other swept
// values (one per backend), error bars from the fastest run to the slowest.
void Bench::plot_statement(const std::string& script, int index, const std::string& file) const {
  const SweepParam& x = *x_axis();
  LinePlot plot;
  std::map<std::string, std::size_t> series_of;
  std::string label;
  for (const auto& key : order_) {
    if (key.script != script || key.index != index) continue;
    const Figure& f = figures_.at(key);
    label = statement_name(f.last, true);
    std::string name;
    double at = 0;
    for (const auto& [param, v] : points_[key.point]) {
      if (param == x.name) {
        at = std::strtod(v.c_str(), nullptr);
      } else {
        name += (name.empty() ? "" : ", ") + (o_.sweeps.size() > 2 ? param + "=" : "") + v;
      }
    }
    if (name.empty()) name = label;
    if (!series_of.contains(name)) {
      series_of[name] = plot.series.size();
      const std::string color = backend_color(name);
      plot.series.push_back({name, color.empty() ? palette_color(plot.series.size()) : color, false, {}});
    }
    plot.series[series_of[name]].points.push_back({at, f.timing.median(), f.timing.min(), f.timing.max()});
  }
  for (auto& se : plot.series) std::sort(se.points.begin(), se.points.end(), [](const PlotPoint& a, const PlotPoint& b) { return a.x < b.x; });
  plot.title = label + " - " + fs::path(script).filename().string() + (o_.linear ? "" : " (log axes)");
  plot.xlabel = "@" + x.name;
  plot.ylabel = "time per run (median; bars: min to max of " + std::to_string(o_.repeat) + " runs)";
  plot.log_x = plot.log_y = !o_.linear;
  draw(plot, file);
  std::cerr << "wrote " << file << "\n";
}

void Bench::plot() const {
  fs::create_directories(o_.plot_dir);
  std::map<std::string, int> used;  // file names, to number a label used twice
  for (const auto& key : order_) {
    if (key.point != order_.front().point) continue;  // each statement once
    const StatementRun& run = figures_.at(key).last;
    if (run.label.empty()) continue;  // --all: unlabelled statements are in the table, not plotted
    std::string base = run.label + (run.cold ? "_cold" : "");
    if (used[base]++ > 0) base = fs::path(key.script).stem().string() + "_" + std::to_string(key.index) + "_" + base;
    plot_statement(key.script, key.index, (fs::path(o_.plot_dir) / (base + ".png")).string());
  }
  if (used.empty()) throw std::runtime_error("--plot: no statement is labelled '-- measure: NAME', so there is nothing to plot");
}

// Writes `table` to `path`, '-' being stdout.
void write_file(const std::string& path, const Table& table, void (*writer)(std::ostream&, const Table&)) {
  if (path == "-") {
    writer(std::cout, table);
    return;
  }
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  writer(out, table);
}

}  // namespace

int run_scripts(const RunOptions& o) {
  check(o);
  Bench bench(o);
  bench.run();
  // The human table goes to stdout unless stdout carries CSV or JSON.
  const bool stdout_taken = o.csv_path == "-" || o.json_path == "-";
  write_text(stdout_taken ? std::cerr : std::cout, bench.table(true));
  const Table data = bench.table(false);
  if (!o.csv_path.empty()) write_file(o.csv_path, data, write_csv);
  if (!o.json_path.empty()) write_file(o.json_path, data, write_json);
  if (!o.plot_dir.empty()) bench.plot();
  return 0;
}

bool SweepParam::numeric() const {
  return std::all_of(values.begin(), values.end(), is_number);
}

void check(const RunOptions& o) {
  if (o.scripts.empty()) throw UsageError("no script given");
  if (o.csv_path == "-" && o.json_path == "-") throw UsageError("--csv - and --json - cannot both write to stdout");
  if (o.plot_dir.empty()) return;
  if (o.sweeps.empty()) throw UsageError("--plot needs --sweep (time is plotted against a swept number, such as --sweep n=10,100,1000)");
  const auto x = std::find_if(o.sweeps.begin(), o.sweeps.end(), [](const SweepParam& s) { return s.numeric(); });
  if (x == o.sweeps.end()) {
    throw UsageError("--plot needs a numeric --sweep for the x axis (such as --sweep n=10,100,1000); " + o.sweeps.front().name + "=" +
                     o.sweeps.front().values.front() + ",... is not numeric, so it can only make one line per value");
  }
  if (!o.linear) {
    for (const auto& v : x->values) {
      if (std::strtod(v.c_str(), nullptr) <= 0) throw UsageError("--plot: @" + x->name + "=" + v + " cannot be shown on a log axis; add --linear");
    }
  }
}

}  // namespace imgbench
