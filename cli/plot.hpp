// Plots through gnuplot (pngcairo), one question per figure: lines of a measure against a count with error
// bars from the fastest to the slowest run, on log axes by default; grouped bars; side-by-side panels.
// Every series has a colour (one per backend, from a colour-blind-safe palette) and a dash pattern (solid:
// through SQL, dashed: the raw C baseline); legends sit outside the data.
#pragma once

#include <string>
#include <vector>

namespace imgbench {

struct PlotPoint {
  double x = 0, y = 0, lo = 0, hi = 0;  // lo..hi: the error bar (min..max of the runs)
};

struct Series {
  std::string name;
  std::string color;  // "#rrggbb"
  bool dashed = false;
  std::vector<PlotPoint> points;
  int point_type = 0;  // gnuplot's pt; 0: a filled circle, or an open one when dashed
  double line_width = 2;
};

enum class Unit { seconds, bytes, count };

struct LinePlot {
  std::string title, xlabel, ylabel;  // ylabel: the unit is added
  bool log_x = true, log_y = true;
  Unit x_unit = Unit::count, y_unit = Unit::seconds;
  std::vector<Series> series;
};

struct BarSeries {
  std::string name, color;
  std::vector<PlotPoint> values;  // one per group: y, lo, hi (x unused)
};

struct BarPlot {
  std::string title, ylabel;
  std::vector<std::string> groups;  // x categories
  std::vector<BarSeries> bars;      // seconds
};

// Okabe and Ito's palette without its yellow (faint on white): a backend's colour, or the i-th colour.
std::string backend_color(const std::string& backend);
std::string palette_color(std::size_t i);
// A backend's marker, filled (SQL) or open (raw C), so that lines that coincide stay told apart.
int backend_point(const std::string& backend, bool open);

// Write `png`; throw std::runtime_error with gnuplot's message when it fails or is missing.
void draw(const LinePlot& plot, const std::string& png);
void draw(const BarPlot& plot, const std::string& png);
// Panels side by side under one title, sharing the first panel's legend (drawn at the right).
void draw_panels(const std::string& title, const std::vector<LinePlot>& panels, const std::string& png);

}  // namespace imgbench
