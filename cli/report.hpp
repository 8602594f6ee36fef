// The main job: every experiment (store one, store many, read one, read many cold and warm, disk usage) on
// every backend, for each image count, on two data sets, each next to the raw C API doing the same work;
// written as report.md, results.csv, results.json and plots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "progress.hpp"

namespace imgbench {

struct ReportOptions {
  std::string out_dir = "report";
  std::string sql_dir = "sql";
  std::string extension;
  std::string cifar;    // a cifar-10-batches-bin directory; empty: synthetic smooth 32x32x3 images instead
  std::string scratch;  // where the stores are made (default: OUT/stores), removed as it goes
  bool quick = false;
  Progress::Mode progress = Progress::Mode::off;
  std::vector<std::int64_t> counts;  // default 10 .. 100,000 (quick: 10, 100, 1,000)
  std::vector<std::string> backends = {"lmdb", "hdf5", "png_dir"};
};

int run_report(const ReportOptions& options);

}  // namespace imgbench
