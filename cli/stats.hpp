// Repeated timings, their summary, and when a figure is too noisy to be read as a finding.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace imgbench {

struct Timing {
  std::vector<double> samples;  // seconds
  bool empty() const { return samples.empty(); }
  std::size_t runs() const { return samples.size(); }
  double min() const { return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end()); }
  double max() const { return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end()); }
  double median() const {
    if (samples.empty()) return 0;
    std::vector<double> s = samples;
    std::sort(s.begin(), s.end());
    const std::size_t m = s.size() / 2;
    return s.size() % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
  // max / min: 1 for identical runs.
  double spread() const { return min() > 0 ? max() / min() : 1; }
};

// A figure whose slowest run took more than 1.5 times its fastest: its median is not a finding.
constexpr double kNoisySpread = 1.5;

inline bool noisy(const Timing& t) { return t.runs() > 1 && t.spread() > kNoisySpread; }

// The ratio sql / raw is told apart from 1.0 only when the two ranges of runs do not overlap: when the SQL
// path's fastest run is slower than the raw path's slowest, or its slowest faster than the raw's fastest.
inline bool ratio_within_noise(const Timing& sql, const Timing& raw) {
  return !(sql.min() > raw.max() || sql.max() < raw.min());
}

// "noisy (max/min 2.3)" or empty.
std::string noise_warning(const Timing& t);

// "12.3 ms", "1.25 s", "850 µs": three significant digits in a readable unit.
std::string human_seconds(double seconds);
// The median with its min and max in the median's unit: "12.3 ms (11.9-14.0)".
std::string human_range(const Timing& t);
// Binary units throughout: "4.03 KiB", "394 MiB".
std::string human_bytes(double bytes);

}  // namespace imgbench
