#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

namespace imgbench {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Progress(bool enabled) : enabled_(enabled) {}

Progress::~Progress() { clear(); }

void Progress::show(int step, int total, const std::string& what, double elapsed) {
  if (!enabled_) return;
  constexpr int kWidth = 24;
  const int filled = total > 0 ? step * kWidth / total : 0;
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(kWidth, '.');
  std::fprintf(stderr, "\r\033[K[%s] %d/%d %.50s %.1fs", bar.c_str(), step, total, what.c_str(), elapsed);
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (enabled_ && shown_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  shown_ = false;
}

}  // namespace imgbench
