// What the report measures and keeps: its data sets and one Result per dataset, backend, measure, count and
// thread count; written out by report_markdown.cpp (report.md, results.csv/json) and report_plots.cpp.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "output.hpp"
#include "report.hpp"
#include "stats.hpp"

namespace imgbench::report {

// Runs per figure: enough for a median and a range; the one-image figures are cheap, so more.
constexpr int kRuns = 3;
constexpr int kOneRuns = 5;

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
  Timing native;            // a native SQLite table doing the same work (store_many, scans, random_batch)
  unsigned threads = 1;     // the store's `threads` argument for the SQL path; raw C and native are one thread
  std::int64_t images = 0;  // images read (random_batch: its batches' ids), for images per second
};

inline std::string fixed(double v, const char* format = "%.6f") {
  char text[64];
  std::snprintf(text, sizeof text, format, v);
  return text;
}

// "1.16x", or empty when either side was not measured.
inline std::string ratio_text(const Timing& a, const Timing& b) {
  return a.empty() || b.empty() || b.median() <= 0 ? std::string() : fixed(a.median() / b.median(), "%.2fx");
}

Table results_table(const std::vector<Result>& results);
void plots(const std::vector<Result>& results, const Dataset& d, const std::string& out, std::vector<std::string>& files);
void write_report(const ReportOptions& o, const std::vector<Dataset>& datasets, const std::vector<Result>& results,
                  double seconds, const std::vector<std::string>& plot_files);

}  // namespace imgbench::report
