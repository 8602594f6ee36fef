#include "plot.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>

extern char** environ;

namespace imgbench {

namespace {

// A gnuplot single-quoted string: no backslash escapes and no `command` substitution inside, a quote is
// doubled. A newline would end the command, so it becomes a space.
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (const char c : s) {
    if (c == '\'') {
      q += "''";
    } else {
      q += c == '\n' || c == '\r' ? ' ' : c;
    }
  }
  return q + "'";
}

// A string field of inline data ("-" files): double quotes, which data lines cannot escape, become single.
std::string data_field(const std::string& s) {
  std::string q = "\"";
  for (const char c : s) q += c == '"' ? '\'' : (c == '\n' || c == '\r' ? ' ' : c);
  return q + "\"";
}

std::string errno_text(int e) { return std::strerror(e); }

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

class SpawnActions {
 public:
  SpawnActions() {
    if (const int e = posix_spawn_file_actions_init(&actions_); e != 0) throw std::runtime_error("posix_spawn: " + errno_text(e));
  }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

// Blocks SIGPIPE in this thread while the script is written, so a gnuplot that exits early is an EPIPE
// to report, not a signal that kills imgbench; a SIGPIPE raised meanwhile is consumed before unblocking.
class NoSigpipe {
 public:
  NoSigpipe() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~NoSigpipe() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) == 1 && sigismember(&old_, SIGPIPE) == 0) {
      const timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  NoSigpipe(const NoSigpipe&) = delete;
  NoSigpipe& operator=(const NoSigpipe&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

// Everything in a file from its start (gnuplot's messages).
std::string contents(int fd) {
  std::string out;
  char buf[4096];
  for (off_t at = 0;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  return out;
}

// Runs gnuplot without a shell (no path is ever parsed by /bin/sh), the script on its stdin. Its stdout and
// stderr go to an anonymous file (a pipe could fill and deadlock us while we write), shown only on failure:
// gnuplot warns about things as harmless as a plot with one point.
void run_gnuplot(const std::string& script, const std::string& png) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("cannot make a pipe for gnuplot: " + errno_text(errno));
  Fd read_end(fds[0]);
  Fd write_end(fds[1]);
  const Fd messages(::memfd_create("gnuplot-messages", MFD_CLOEXEC));
  if (messages.get() < 0) throw std::runtime_error("cannot make a file for gnuplot's messages: " + errno_text(errno));
  SpawnActions actions;
  posix_spawn_file_actions_adddup2(actions.get(), read_end.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), messages.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(actions.get(), messages.get(), STDERR_FILENO);
  char arg0[] = "gnuplot";
  char* argv[] = {arg0, nullptr};
  pid_t pid = 0;
  if (const int e = posix_spawnp(&pid, "gnuplot", actions.get(), nullptr, argv, environ); e != 0) {
    throw std::runtime_error("cannot start gnuplot for " + png + ": " + errno_text(e) + " (is gnuplot installed?)");
  }
  read_end.reset();
  int write_error = 0;
  {
    const NoSigpipe guard;
    for (std::size_t done = 0; done < script.size();) {
      const ssize_t n = ::write(write_end.get(), script.data() + done, script.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        write_error = errno;
        break;
      }
      done += static_cast<std::size_t>(n);
    }
    write_end.reset();  // end of the script: gnuplot exits
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waiting for gnuplot: " + errno_text(errno));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && write_error == 0) return;
  std::string why = WIFEXITED(status)     ? "exit status " + std::to_string(WEXITSTATUS(status))
                    : WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                          : "status " + std::to_string(status);
  if (write_error != 0) why += "; writing its script: " + errno_text(write_error);
  const std::string said = contents(messages.get());
  throw std::runtime_error("gnuplot failed for " + png + " (" + why + ")" + (said.empty() ? "" : ": " + said));
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
      std::snprintf(row, sizeof row, "%s %.10g\n", data_field(plot.groups[g]).c_str(), values[g]);
      data += row;
    }
    data += "e\n";
  }
  run_gnuplot(s + command + "\n" + data, png);
}

}  // namespace imgbench
