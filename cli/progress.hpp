// Progress on stderr: on a terminal one line rewritten in place, with an estimate of the time left; otherwise
// (a log, CI, a pipe) one plain line as each step starts, so a long run is never silent until the end.
#pragma once

#include <string>

namespace imgbench {

class Progress {
 public:
  enum class Mode { off, lines, terminal };
  // `steps` steps whose weights (their expected cost) add up to `total_weight`, for the estimate of the time left.
  Progress(Mode mode, int steps, double total_weight);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // A new step starts: `what` it is and its weight.
  void start(const std::string& what, double weight = 1);
  // On a terminal, what is running inside the step and for how long (called often; throttled).
  void running(const std::string& detail, double elapsed);
  void clear();

 private:
  std::string head() const;
  Mode mode_;
  double total_ = 0;
  double done_ = 0;        // weight of the steps finished
  double weight_ = 0;      // weight of the current step
  int step_ = 0;
  int steps_ = 0;
  double began_ = 0;       // when the first step started
  double shown_at_ = 0;
  std::string what_;
  bool shown_ = false;
};

bool stderr_is_terminal();
// The default: terminal when stderr is one, plain lines otherwise.
Progress::Mode default_progress_mode();

}  // namespace imgbench
