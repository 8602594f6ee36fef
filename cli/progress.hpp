// A one-line progress display on stderr, shown only when stderr is a terminal.
#pragma once

#include <string>

namespace imgbench {

class Progress {
 public:
  explicit Progress(bool enabled);
  ~Progress();
  // step of total done, what is running now, and how long it has been running.
  void show(int step, int total, const std::string& what, double elapsed);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
};

bool stderr_is_terminal();

}  // namespace imgbench
