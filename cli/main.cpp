// imgbench: runs SQL scripts with the imgstore extension loaded in-process, and times them.
//
//   imgbench -p backend=lmdb -p path="'/tmp/x.lmdb'" -p source=fashion-mnist -p n=1000 sql/store_many.sql
//   imgbench --sweep backend=lmdb,hdf5 --sweep n=10,100,1000 --repeat 3 --plot out/ -p source=fashion-mnist sql/store_many.sql
//   imgbench report --out report/ [--quick] [--cifar cifar-10-batches-bin]
//
// Exit status: 0 on success, 1 when a script fails (an SQL error, a failed imgstore_assert or a statement past
// --timeout), 2 for bad usage.

#include <unistd.h>

#include <climits>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "output.hpp"
#include "plot.hpp"
#include "progress.hpp"
#include "report.hpp"
#include "run.hpp"
#include "session.hpp"
#include "stats.hpp"

namespace {

using namespace imgbench;

constexpr const char* kUsage = R"(usage: imgbench [options] SCRIPT...
       imgbench report [--out DIR] [--quick] [--cifar DIR] [--counts N,N,...] [--backends LIST]

Runs SQL scripts in-process with the imgstore extension loaded, the way the sqlite3 shell runs them
(.parameter set works, @parameters are bound; an unset one is an error naming it), and times every statement.
Each run (every repeat of every combination of swept values) gets a fresh scratch directory under $TMPDIR,
removed after the run: @path defaults to a store in it, and {tmp} in a value names it. So the same command
can run twice in a row.

options:
  -p, --param NAME=VALUE     set @NAME, as `.parameter set @NAME VALUE` does (repeatable); in VALUE, {NAME}
                             of a swept parameter, {repeat} (0, 1, ...; negative in warmups) and {tmp}
                             become the current run's
  -s, --sweep NAME=V1,V2,..  run once per value of @NAME; several --sweep options run their cartesian product.
                             With --plot, the first numeric one is the x axis, the others make one line per
                             value (--sweep backend=lmdb,hdf5,png_dir --sweep n=10,100,1000)
  -r, --repeat N             time N runs of everything; report min, median and max (default 1)
  -w, --warmup N             first N untimed runs of every combination
      --timeout SECONDS      interrupt a statement that runs longer (a runaway recursive query) and fail,
                             naming its script, line and text (exit status 1)
      --prepare SQL|CMD      before each run (warmups too): SQL when it ends with ';', else a shell command
      --cleanup SQL|CMD      after each run, the same way; {tmp} etc. are replaced, $IMGBENCH_TMP is set
      --keep                 keep the scratch directories (their path is printed)
      --all                  show every statement, not only those labelled `-- measure: NAME`
      --csv FILE             also write the results as CSV ('-': stdout, and the table goes to stderr)
      --json FILE            also write the results as JSON ('-': stdout, and the table goes to stderr)
      --plot DIR             with a numeric --sweep: one PNG per measured statement (gnuplot), log axes,
                             error bars from the fastest to the slowest run
      --linear               linear plot axes
      --ext PATH             the extension to load, as given (default: imgstore.so beside imgbench)
      --no-progress          no progress on stderr (by default a line per run, or on a terminal one line
                             updated in place with an estimate of the time left)
  -h, --help                 this text
      --version              the version

A figure whose slowest run took over 1.5 times its fastest is marked noisy (the warning column).
Exit status: 0 on success, 1 when a script fails (an SQL error, a failed imgstore_assert, a statement past
--timeout), 2 for bad usage.

report (the main job; scripts/run calls it):
      --out DIR              where report.md, results.csv, results.json and the plots go (default: report)
      --quick                counts 10, 100, 1,000 only (about 15 s; small figures are mostly noise)
      --cifar DIR            a cifar-10-batches-bin directory; without it, synthetic 32x32x3 images stand in
      --counts LIST          image counts (default 10,100,1000,10000,100000)
      --backends LIST        some of lmdb,hdf5,png_dir (default all three)
      --sql-dir DIR          the experiment scripts (default: the sql/ beside build/, else ./sql)
)";

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

double positive_seconds(const std::string& text, const std::string& option) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v <= 0) {
    throw UsageError(option + " takes a positive number of seconds, got '" + text + "'");
  }
  return v;
}

// Calls handle(argument, value) for each argument in turn; value() takes the next argument as the option's
// value (an error naming the option when there is none).
void for_each_option(const std::vector<std::string>& args,
                     const std::function<void(const std::string&, const std::function<std::string()>&)>& handle) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    handle(a, [&]() -> std::string {
      if (i + 1 >= args.size()) throw UsageError(a + " needs a value");
      return args[++i];
    });
  }
}

int report_main(const std::vector<std::string>& args) {
  ReportOptions o;
  o.extension = default_extension();
  o.sql_dir = default_sql_dir();
  o.progress = default_progress_mode();
  for_each_option(args, [&](const std::string& a, const std::function<std::string()>& value) {
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
      o.progress = Progress::Mode::off;
    } else {
      throw UsageError("report: unknown option '" + a + "'");
    }
  });
  return run_report(o);
}

// One option of the run command; false when `a` is not one.
bool run_option(RunOptions& o, const std::string& a, const std::function<std::string()>& value) {
  if (a == "-p" || a == "--param") {
    o.params.push_back(split_assignment(value(), a));
  } else if (a == "-s" || a == "--sweep") {
    const auto [name, list] = split_assignment(value(), a);
    for (const auto& s : o.sweeps) {
      if (s.name == name) throw UsageError(a + " " + name + " is given twice (several --sweep options are swept together, each once)");
    }
    o.sweeps.push_back({name, split_list(list)});
    if (o.sweeps.back().values.empty()) throw UsageError(a + " needs at least one value");
  } else if (a == "-r" || a == "--repeat" || a == "--runs") {
    o.repeat = positive(value(), a);
  } else if (a == "-w" || a == "--warmup") {
    o.warmup = positive(value(), a);
  } else if (a == "--timeout") {
    o.timeout = positive_seconds(value(), a);
  } else if (a == "--prepare") {
    o.prepare = value();
  } else if (a == "--cleanup") {
    o.cleanup = value();
  } else if (a == "--all") {
    o.all = true;
  } else if (a == "--keep") {
    o.keep = true;
  } else if (a == "--linear") {
    o.linear = true;
  } else if (a == "--csv") {
    o.csv_path = value();
  } else if (a == "--json") {
    o.json_path = value();
  } else if (a == "--plot") {
    o.plot_dir = value();
  } else if (a == "--ext") {
    o.extension = value();
  } else if (a == "--no-progress") {
    o.progress = Progress::Mode::off;
  } else {
    return false;
  }
  return true;
}

int run_main(const std::vector<std::string>& args) {
  RunOptions o;
  o.extension = default_extension();
  o.progress = default_progress_mode();
  for_each_option(args, [&](const std::string& a, const std::function<std::string()>& value) {
    if (run_option(o, a, value)) return;
    if (!a.empty() && a[0] == '-') throw UsageError("unknown option '" + a + "'");
    if (!std::filesystem::is_regular_file(a)) throw UsageError("script '" + a + "' does not exist");
    o.scripts.push_back(a);
  });
  check(o);
  return run_scripts(o);
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
