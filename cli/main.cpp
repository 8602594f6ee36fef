// imgbench: runs SQL scripts with the imgstore extension loaded in-process, and times them.
//
//   imgbench -p backend=lmdb -p path="'/tmp/x.lmdb'" -p source=fashion-mnist -p n=1000 sql/store_many.sql
//   imgbench --sweep n=10,100,1000 --repeat 3 --plot out/ -p backend=hdf5 ... sql/store_many.sql
//   imgbench report --out report/ [--quick] [--cifar cifar-10-batches-bin]
//
// Exit status: 0 on success, 1 when a script fails (an SQL error or a failed imgstore_assert), 2 for bad usage.

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "output.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "session.hpp"
#include "stats.hpp"

namespace {

using namespace imgbench;

constexpr const char* kUsage = R"(usage: imgbench [options] SCRIPT...
       imgbench report [--out DIR] [--quick] [--cifar DIR] [--counts N,N,...]

Runs SQL scripts in-process with the imgstore extension loaded, the way the sqlite3 shell runs them
(.parameter set works, @parameters are bound), and times every statement.

options:
  -p, --param NAME=VALUE     set @NAME, as `.parameter set @NAME VALUE` does (repeatable); in VALUE,
                             {NAME} of the swept parameter and {repeat} become the current run's
  -s, --sweep NAME=V1,V2,..  run the scripts once per value of @NAME (e.g. n=10,100,1000)
  -r, --repeat N             run everything N times; report min, median and max (default 1)
      --all                  show every statement, not only those labelled `-- measure: NAME`
      --csv FILE             also write the results as CSV ('-' for stdout)
      --json FILE            also write the results as JSON ('-' for stdout)
      --plot DIR             with --sweep: PNG plots (gnuplot) of time against the swept value, linear and log
      --ext PATH             the extension to load (default: imgstore.so beside imgbench)
      --no-progress          no progress line on stderr (it is off anyway when stderr is not a terminal)
  -h, --help                 this text
      --version              the version

report (the main job; scripts/run calls it):
      --out DIR              where report.md, results.csv, results.json and the plots go (default: report)
      --quick                counts 10, 100, 1,000 only (about a minute)
      --cifar DIR            a cifar-10-batches-bin directory; without it, synthetic 32x32x3 images stand in
      --counts LIST          image counts (default 10,100,1000,10000,100000)
      --backends LIST        some of lmdb,hdf5,png_dir (default all three)
      --sql-dir DIR          the experiment scripts (default: the sql/ beside build/, else ./sql)
)";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::filesystem::path own_directory() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return ".";
  self[n] = '\0';
  return std::filesystem::path(self).parent_path();
}

std::string default_extension() { return (own_directory() / "imgstore").string(); }

// The experiment scripts: sql/ of the source tree that build/ sits in, else ./sql.
std::string default_sql_dir() {
  const auto beside = own_directory().parent_path() / "sql";
  return std::filesystem::is_regular_file(beside / "store_many.sql") ? beside.string() : "sql";
}

std::pair<std::string, std::string> split_assignment(const std::string& text, const std::string& option) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) throw UsageError(option + " takes NAME=VALUE, got '" + text + "'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

long long positive(const std::string& text, const std::string& option) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < 1) throw UsageError(option + " takes a positive integer, got '" + text + "'");
  return v;
}

int report_main(const std::vector<std::string>& args) {
  ReportOptions o;
  o.extension = default_extension();
  o.sql_dir = default_sql_dir();
  o.progress = stderr_is_terminal();
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "--out") {
      o.out_dir = value();
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--cifar") {
      o.cifar = value();
      if (!std::filesystem::is_directory(o.cifar)) throw UsageError("--cifar: '" + o.cifar + "' is not a directory");
    } else if (a == "--counts") {
      for (const auto& c : split_list(value())) o.counts.push_back(positive(c, "--counts"));
    } else if (a == "--sql-dir") {
      o.sql_dir = value();
    } else if (a == "--backends") {
      o.backends.clear();
      for (const auto& b : split_list(value())) {
        if (b != "lmdb" && b != "hdf5" && b != "png_dir") throw UsageError("--backends: '" + b + "' is not lmdb, hdf5 or png_dir");
        o.backends.push_back(b);
      }
    } else if (a == "--ext") {
      o.extension = value();
    } else if (a == "--no-progress") {
      o.progress = false;
    } else {
      throw UsageError("report: unknown option '" + a + "'");
    }
  }
  return run_report(o);
}

// {NAME} of the swept parameter becomes its current value and {repeat} the repeat number, so that each run
// can have its own store: -p "path='/tmp/s-{n}-{repeat}.lmdb'".
std::string expand(std::string value, const std::string& sweep_name, const std::string& sweep_value, long long repeat) {
  const auto replace_all = [&](const std::string& from, const std::string& to) {
    for (auto at = value.find(from); at != std::string::npos; at = value.find(from, at + to.size())) value.replace(at, from.size(), to);
  };
  if (!sweep_name.empty()) replace_all("{" + sweep_name + "}", sweep_value);
  replace_all("{repeat}", std::to_string(repeat));
  return value;
}

struct Key {
  std::string script;
  int index;
  std::string sweep;
  bool operator<(const Key& o) const { return std::tie(script, index, sweep) < std::tie(o.script, o.index, o.sweep); }
};

int run_main(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, std::string>> params;
  std::string sweep_name;
  std::vector<std::string> sweep_values = {""};
  long long repeat = 1;
  bool all = false;
  bool progress_on = stderr_is_terminal();
  std::string csv_path, json_path, plot_dir;
  std::string extension = default_extension();
  std::vector<std::string> scripts;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    };
    if (a == "-p" || a == "--param") {
      params.push_back(split_assignment(value(), a));
    } else if (a == "-s" || a == "--sweep") {
      const auto [name, list] = split_assignment(value(), a);
      sweep_name = name;
      sweep_values = split_list(list);
      if (sweep_values.empty()) throw UsageError(a + " needs at least one value");
    } else if (a == "-r" || a == "--repeat") {
      repeat = positive(value(), a);
    } else if (a == "--all") {
      all = true;
    } else if (a == "--csv") {
      csv_path = value();
    } else if (a == "--json") {
      json_path = value();
    } else if (a == "--plot") {
      plot_dir = value();
    } else if (a == "--ext") {
      extension = value();
    } else if (a == "--no-progress") {
      progress_on = false;
    } else if (!a.empty() && a[0] == '-') {
      throw UsageError("unknown option '" + a + "'");
    } else {
      if (!std::filesystem::is_regular_file(a)) throw UsageError("script '" + a + "' does not exist");
      scripts.push_back(a);
    }
  }
  if (scripts.empty()) throw UsageError("no script given");
  if (!plot_dir.empty() && sweep_name.empty()) throw UsageError("--plot needs --sweep (time is plotted against the swept value)");

  Session session(extension);
  Progress progress(progress_on);
  int step = 0;
  const int total = static_cast<int>(repeat * static_cast<long long>(sweep_values.size() * scripts.size()));
  std::string current;
  session.on_progress = [&](const std::string& what, double elapsed) { progress.show(step, total, current + " " + what, elapsed); };

  std::map<Key, Timing> timings;
  std::map<Key, StatementRun> info;
  std::vector<Key> order;  // first appearance: scripts in the order given, then their statements
  for (long long r = 0; r < repeat; ++r) {
    for (const auto& v : sweep_values) {
      for (const auto& [name, value] : params) session.set_param(name, expand(value, sweep_name, v, r));
      if (!sweep_name.empty()) session.set_param(sweep_name, v);
      for (const auto& script : scripts) {
        ++step;
        current = script + (sweep_name.empty() ? "" : " " + sweep_name + "=" + v);
        for (auto& run : session.run_script(script)) {
          if (!all && run.label.empty()) continue;
          const Key key{script, run.index, v};
          if (!timings.contains(key)) order.push_back(key);
          timings[key].samples.push_back(run.seconds);
          info[key] = run;
        }
      }
    }
  }
  progress.clear();

  Table t;
  t.header = {"script", "statement"};
  if (!sweep_name.empty()) t.header.push_back("@" + sweep_name);
  for (const char* h : {"repeats", "rows", "min_s", "median_s", "max_s", "result"}) t.header.push_back(h);
  t.numeric.assign(t.header.size(), true);
  t.numeric[0] = t.numeric[1] = t.numeric.back() = false;
  Table human = t;
  for (const auto& key : order) {
    const Timing& timing = timings[key];
    const StatementRun& run = info[key];
    std::string what = run.label.empty() ? run.sql.substr(0, 48) : run.label + (run.cold ? (run.cache_dropped ? " (cold)" : " (first)") : "");
    std::vector<std::string> row = {key.script, what};
    if (!sweep_name.empty()) row.push_back(key.sweep);
    std::vector<std::string> shown = row;
    char buf[32];
    row.push_back(std::to_string(timing.samples.size()));
    row.push_back(std::to_string(run.rows));
    shown.push_back(row.back() == "" ? "" : std::to_string(timing.samples.size()));
    shown.push_back(std::to_string(run.rows));
    for (const double s : {timing.min(), timing.median(), timing.max()}) {
      std::snprintf(buf, sizeof buf, "%.6f", s);
      row.push_back(buf);
      shown.push_back(human_seconds(s));
    }
    row.push_back(run.first_row);
    shown.push_back(run.first_row.substr(0, 40));
    t.rows.push_back(row);
    human.rows.push_back(shown);
  }
  write_text(std::cout, human);
  const auto write_to = [&](const std::string& path, auto writer) {
    if (path == "-") {
      writer(std::cout, t);
      return;
    }
    std::ofstream out(path);
    if (!out) throw std::runtime_error("cannot write '" + path + "'");
    writer(out, t);
  };
  if (!csv_path.empty()) write_to(csv_path, write_csv);
  if (!json_path.empty()) write_to(json_path, write_json);
  if (!plot_dir.empty()) {
    std::filesystem::create_directories(plot_dir);
    for (const bool log : {false, true}) {
      LinePlot p;
      p.title = "time against @" + sweep_name + (log ? " (log axes)" : "");
      p.xlabel = "@" + sweep_name;
      p.ylabel = "seconds (median)";
      p.log_axes = log;
      for (const auto& [key, timing] : timings) {
        const StatementRun& run = info[key];
        const std::string name = std::filesystem::path(key.script).stem().string() + ": " + (run.label.empty() ? run.sql.substr(0, 30) : run.label);
        p.series[name].push_back({std::strtod(key.sweep.c_str(), nullptr), timing.median()});
      }
      const std::string file = plot_dir + (log ? "/sweep_log.png" : "/sweep_linear.png");
      draw(p, file);
      std::cerr << "wrote " << file << "\n";
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    for (const auto& a : args) {
      if (a == "-h" || a == "--help") {
        std::cout << kUsage;
        return 0;
      }
      if (a == "--version") {
        std::cout << "imgbench 1.0 (SQLite " << sqlite3_libversion() << ")\n";
        return 0;
      }
    }
    if (!args.empty() && args[0] == "report") return report_main(std::vector<std::string>(args.begin() + 1, args.end()));
    if (!args.empty() && args[0] == "run") args.erase(args.begin());
    return run_main(args);
  } catch (const UsageError& e) {
    std::cerr << "imgbench: " << e.what() << "\n(see imgbench --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "imgbench: " << e.what() << "\n";
    return 1;
  }
}
