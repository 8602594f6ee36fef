// Plots through gnuplot (pngcairo): lines of y against x on linear or log axes, and grouped bars.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace imgbench {

struct LinePlot {
  std::string title, xlabel, ylabel;
  bool log_axes = false;
  std::map<std::string, std::vector<std::pair<double, double>>> series;  // name -> (x, y) points
};

struct BarPlot {
  std::string title, ylabel;
  std::vector<std::string> groups;                 // x categories
  std::map<std::string, std::vector<double>> bars;  // bar name -> one value per group
};

// Writes `png`; throws std::runtime_error with gnuplot's message when it fails or is missing.
void draw(const LinePlot& plot, const std::string& png);
void draw(const BarPlot& plot, const std::string& png);

}  // namespace imgbench
