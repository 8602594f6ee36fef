// `imgbench [options] SCRIPT...`: runs SQL scripts over the cartesian product of the swept parameters,
// each run in a fresh scratch directory, times every statement, and writes a table, CSV, JSON and plots.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "progress.hpp"

namespace imgbench {

// Bad usage: exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct SweepParam {
  std::string name;
  std::vector<std::string> values;
  // Every value a number: an x axis. Otherwise (backend=lmdb,hdf5) each value is a series of its own.
  bool numeric() const;
};

struct RunOptions {
  std::vector<std::pair<std::string, std::string>> params;  // -p NAME=VALUE, {placeholders} unexpanded
  std::vector<SweepParam> sweeps;                           // in the order given; the first varies slowest
  long long repeat = 1;
  long long warmup = 0;
  double timeout = 0;   // --timeout: seconds a statement may run (0: no limit)
  bool all = false;
  bool keep = false;    // keep the scratch directories
  bool linear = false;  // plots on linear axes
  Progress::Mode progress = Progress::Mode::off;
  std::string csv_path, json_path, plot_dir, extension, prepare, cleanup;
  std::vector<std::string> scripts;
};

// Throws UsageError for what cannot be done (two outputs on stdout, a plot with no numeric x axis, a log
// axis through zero), before anything runs.
void check(const RunOptions& options);

// Runs everything and writes the results; throws std::runtime_error when a script fails.
int run_scripts(const RunOptions& options);

}  // namespace imgbench
