// The report's plots: a line per backend and path over the image count, disk usage, store one.
#include <algorithm>
#include <map>

#include "plot.hpp"
#include "report_results.hpp"

namespace imgbench::report {

namespace {

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
      if (r.dataset != d.key || r.measure != measure || r.threads != 1) continue;
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

}  // namespace

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
  line("random_batch", "Random batches: n / 256 batches of 256 random ids, each one id IN (...), from a store of n");
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

}  // namespace imgbench::report
