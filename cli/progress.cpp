#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "session.hpp"

namespace imgbench {

bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

Progress::Mode default_progress_mode() { return stderr_is_terminal() ? Progress::Mode::terminal : Progress::Mode::lines; }

Progress::Progress(Mode mode, int steps, double total_weight) : mode_(mode), total_(total_weight), steps_(steps) {}

Progress::~Progress() { clear(); }

namespace {

std::string duration(double s) {
  const long total = static_cast<long>(s + 0.5);
  return total < 60 ? std::to_string(total) + " s" : std::to_string(total / 60) + " min " + std::to_string(total % 60) + " s";
}

}  // namespace

// "[3/12] store_many.sql n=100, 4 s in, about 20 s left": the estimate scales the time so far by the weight
// left, once a step has finished (before that there is nothing to scale).
std::string Progress::head() const {
  const double elapsed = now_seconds() - began_;
  char counter[48];
  std::snprintf(counter, sizeof counter, "[%d/%d] ", step_, steps_);
  std::string text = counter + what_;
  if (done_ > 0 && total_ > done_) text += ", " + duration(elapsed) + " in, about " + duration(elapsed / done_ * (total_ - done_)) + " left";
  return text;
}

void Progress::start(const std::string& what, double weight) {
  if (mode_ == Mode::off) return;
  if (step_ == 0) began_ = now_seconds();
  done_ += weight_;
  weight_ = weight;
  ++step_;
  what_ = what;
  if (mode_ == Mode::lines) {
    std::fprintf(stderr, "imgbench: %s\n", head().c_str());
    std::fflush(stderr);
    return;
  }
  running("", 0);
}

void Progress::running(const std::string& detail, double elapsed) {
  if (mode_ != Mode::terminal) return;
  const double now = now_seconds();
  if (shown_ && now - shown_at_ < 0.1) return;  // a terminal redrawn 100 times a second is unreadable
  shown_at_ = now;
  std::string line = head();
  if (!detail.empty()) {
    char spent[32];
    std::snprintf(spent, sizeof spent, " %.1f s", elapsed);
    line += " | " + detail + spent;
  }
  std::fprintf(stderr, "\r\033[K%.150s", line.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void Progress::clear() {
  if (mode_ == Mode::terminal && shown_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  shown_ = false;
}

}  // namespace imgbench
