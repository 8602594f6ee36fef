#include "plot.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace imgbench {

namespace {

std::string quoted(const std::string& s) {
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? std::string("\\\"") : std::string(1, c);
  return q + "\"";
}

void run_gnuplot(const std::string& script, const std::string& png) {
  const std::string path = png + ".gp";
  std::ofstream(path) << script;
  const std::string log = png + ".log";
  const std::string command = "gnuplot " + quoted(path) + " > " + quoted(log) + " 2>&1";
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    std::ifstream in(log);
    const std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    throw std::runtime_error("gnuplot failed for " + png + ": " + (message.empty() ? "is gnuplot installed?" : message));
  }
  std::filesystem::remove(path);
  std::filesystem::remove(log);
}

const char* kHeader =
    "set terminal pngcairo size 900,560 noenhanced font 'DejaVu Sans,10'\n"
    "set grid\nset key top left\n";

}  // namespace

void draw(const LinePlot& plot, const std::string& png) {
  std::string s = kHeader;
  s += "set output " + quoted(png) + "\n";
  s += "set title " + quoted(plot.title) + "\nset xlabel " + quoted(plot.xlabel) + "\nset ylabel " + quoted(plot.ylabel) + "\n";
  if (plot.log_axes) s += "set logscale xy\nset format y '%g'\nset format x '%g'\n";
  std::string command = "plot ";
  std::string data;
  bool first = true;
  for (const auto& [name, points] : plot.series) {
    command += std::string(first ? "" : ", ") + "'-' using 1:2 with linespoints lw 2 pt 7 title " + quoted(name);
    first = false;
    for (const auto& [x, y] : points) {
      char row[64];
      std::snprintf(row, sizeof row, "%.10g %.10g\n", x, plot.log_axes ? std::max(y, 1e-9) : y);
      data += row;
    }
    data += "e\n";
  }
  run_gnuplot(s + command + "\n" + data, png);
}

void draw(const BarPlot& plot, const std::string& png) {
  std::string s = kHeader;
  s += "set output " + quoted(png) + "\n";
  s += "set title " + quoted(plot.title) + "\nset ylabel " + quoted(plot.ylabel) + "\n";
  s += "set style data histogram\nset style histogram cluster gap 1\nset style fill solid 0.8 border -1\nset boxwidth 0.9\n";
  s += "set yrange [0:*]\nset key top right\n";
  std::string command = "plot ";
  std::string data;
  bool first = true;
  for (const auto& [name, values] : plot.bars) {
    command += std::string(first ? "" : ", ") + "'-' using 2:xtic(1) title " + quoted(name);
    first = false;
    for (std::size_t g = 0; g < plot.groups.size() && g < values.size(); ++g) {
      char row[160];
      std::snprintf(row, sizeof row, "%s %.10g\n", quoted(plot.groups[g]).c_str(), values[g]);
      data += row;
    }
    data += "e\n";
  }
  run_gnuplot(s + command + "\n" + data, png);
}

}  // namespace imgbench
