// Repeated timings and their summary.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace imgbench {

struct Timing {
  std::vector<double> samples;  // seconds
  bool empty() const { return samples.empty(); }
  double min() const { return samples.empty() ? 0 : *std::min_element(samples.begin(), samples.end()); }
  double max() const { return samples.empty() ? 0 : *std::max_element(samples.begin(), samples.end()); }
  double median() const {
    if (samples.empty()) return 0;
    std::vector<double> s = samples;
    std::sort(s.begin(), s.end());
    const std::size_t m = s.size() / 2;
    return s.size() % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2;
  }
};

// "12.3 ms", "1.25 s", "850 us": three significant digits in a readable unit.
std::string human_seconds(double seconds);
std::string human_bytes(double bytes);

}  // namespace imgbench
