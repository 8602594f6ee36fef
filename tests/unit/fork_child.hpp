// A check run in a forked child, beside the parent: the child's result travels back as its exit status (doctest's
// macros belong to the parent's run, so the child only computes a code, 0 for success).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <exception>

class ForkedChild {
 public:
  template <typename F>
  explicit ForkedChild(F&& body) : pid_(::fork()) {
    if (pid_ != 0) return;
    int code = 99;
    try {
      code = body();
    } catch (const std::exception&) {
      code = 98;
    }
    ::_exit(code);  // no atexit handlers, no destructors of the parent's objects
  }
  ForkedChild(const ForkedChild&) = delete;
  ForkedChild& operator=(const ForkedChild&) = delete;
  ~ForkedChild() { wait(); }

  // The child's exit code; -1 when it did not exit normally.
  int wait() {
    if (pid_ <= 0) return code_;
    int status = 0;
    if (::waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status)) code_ = WEXITSTATUS(status);
    pid_ = -1;
    return code_;
  }

 private:
  pid_t pid_;
  int code_ = -1;
};
