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
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "output.hpp"

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

std::string fixed_g(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", v);
  return text;
}

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

const std::vector<std::string> kPalette = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"};

// Scale and name of the unit the largest value reads best in.
std::pair<double, std::string> unit_of(Unit unit, double largest) {
  if (unit == Unit::seconds) {
    if (largest >= 1) return {1, "s"};
    if (largest >= 1e-3) return {1e-3, "ms"};
    return {1e-6, "\u00b5s"};
  }
  if (unit == Unit::bytes) {
    if (largest >= 1024.0 * 1024 * 1024) return {1024.0 * 1024 * 1024, "GiB"};
    if (largest >= 1024.0 * 1024) return {1024.0 * 1024, "MiB"};
    if (largest >= 1024) return {1024, "KiB"};
    return {1, "B"};
  }
  return {1, ""};
}

// "10 µs", "1 ms", "100 KiB", "10,000": a decade's label in its own unit.
std::string decade_label(Unit unit, double v) {
  if (unit == Unit::count) return grouped(static_cast<long long>(v + 0.5));
  const auto [scale, name] = unit_of(unit, v * 1.0001);
  char text[32];
  std::snprintf(text, sizeof text, "%g %s", v / scale, name.c_str());
  return text;
}

// Explicit tics at each power of ten between lo and hi, labelled in readable units; gnuplot's own would
// be "1e-05" and "0.0001".
std::string decade_tics(const char* axis, Unit unit, double lo, double hi) {
  std::string tics = std::string("set ") + axis + "tics (";
  bool first = true;
  const double start = std::pow(10.0, std::floor(std::log10(std::max(lo, 1e-12))));
  for (double v = start; v <= hi * 1.0001; v *= 10) {
    tics += std::string(first ? "" : ", ") + quoted(decade_label(unit, v)) + " " + fixed_g(v);
    first = false;
  }
  return tics + ")\n";
}

// The axis settings and the scale the data must be divided by (linear axes read in one unit).
std::string axes(const LinePlot& p, double& y_scale) {
  double x_lo = 1e300, x_hi = 0, y_lo = 1e300, y_hi = 0;
  for (const auto& s : p.series) {
    for (const auto& pt : s.points) {
      x_lo = std::min(x_lo, pt.x);
      x_hi = std::max(x_hi, pt.x);
      y_lo = std::min(y_lo, std::max(pt.lo, 1e-12));
      y_hi = std::max(y_hi, pt.hi);
    }
  }
  std::string s = "set xlabel " + quoted(p.xlabel) + "\n";
  if (p.log_x) s += "set logscale x\n" + decade_tics("x", p.x_unit, x_lo, x_hi) + "set xrange [" + fixed_g(x_lo / 1.5) + ":" + fixed_g(x_hi * 1.5) + "]\n";
  y_scale = 1;
  if (p.log_y) {
    s += "set logscale y\n" + decade_tics("y", p.y_unit, y_lo, y_hi) + "set ylabel " + quoted(p.ylabel) + "\n";
    s += "set yrange [" + fixed_g(y_lo / 1.4) + ":" + fixed_g(y_hi * 1.4) + "]\n";  // the data, not the enclosing decades
  } else {
    const auto [scale, name] = unit_of(p.y_unit, y_hi);
    y_scale = scale;
    s += "set yrange [0:*]\nset ylabel " + quoted(p.ylabel + (name.empty() ? "" : " (" + name + ")")) + "\n";
  }
  return s;
}

// The plot command and its inline data, error bars from lo to hi.
std::string lines(const LinePlot& p, double y_scale) {
  std::string command = "plot ";
  std::string data;
  for (std::size_t i = 0; i < p.series.size(); ++i) {
    const Series& se = p.series[i];
    const int pt = se.point_type != 0 ? se.point_type : (se.dashed ? 6 : 7);
    command += std::string(i > 0 ? ", " : "") + "'-' using 1:2:3:4 with yerrorlines lw " + fixed_g(se.line_width) + " pt " + std::to_string(pt) +
               " ps 0.9 dt " + (se.dashed ? "(6,4)" : "1") + " lc rgb " + quoted(se.color) + " title " + quoted(se.name);
    for (const auto& pt : se.points) {
      data += fixed_g(pt.x) + " " + fixed_g(pt.y / y_scale) + " " + fixed_g(pt.lo / y_scale) + " " + fixed_g(pt.hi / y_scale) + "\n";
    }
    data += "e\n";
  }
  return command + "\n" + data;
}

std::string header(const std::string& png, int width, int height) {
  return "set terminal pngcairo size " + std::to_string(width) + "," + std::to_string(height) +
         " noenhanced font 'DejaVu Sans,10'\nset output " + quoted(png) + "\nset grid\nset border 3\nset tics nomirror\n";
}

}  // namespace

std::string backend_color(const std::string& backend) {
  if (backend == "lmdb") return kPalette[0];
  if (backend == "hdf5") return kPalette[1];
  if (backend == "png_dir") return kPalette[2];
  return "";
}

std::string palette_color(std::size_t i) { return kPalette[i % kPalette.size()]; }

int backend_point(const std::string& backend, bool open) {
  const int filled = backend == "hdf5" ? 5 : backend == "png_dir" ? 9 : 7;  // square, triangle, circle
  return open ? filled - 1 : filled;
}

void draw(const LinePlot& plot, const std::string& png) {
  double y_scale = 1;
  std::string s = header(png, 960, 560) + "set key outside right top vertical\nset title " + quoted(plot.title) + "\n";
  s += axes(plot, y_scale);
  run_gnuplot(s + lines(plot, y_scale), png);
}

void draw_panels(const std::string& title, const std::vector<LinePlot>& panels, const std::string& png) {
  std::string s = header(png, 1500, 540) + "set multiplot title " + quoted(title) + "\n";
  const double key_width = 0.16;
  const double width = (1.0 - key_width) / static_cast<double>(panels.size());
  for (std::size_t i = 0; i < panels.size(); ++i) {
    double y_scale = 1;
    const double left = static_cast<double>(i) * width;
    s += "set lmargin at screen " + fixed_g(left + 0.055) + "\nset rmargin at screen " + fixed_g(left + width - 0.01) + "\n";
    s += "set tmargin at screen 0.86\nset bmargin at screen 0.12\nunset logscale\nset xtics autofreq\nset ytics autofreq\n";
    s += "set title " + quoted(panels[i].title) + "\n";
    s += i == 0 ? "set key at screen 0.995, 0.86 right top vertical\n" : "unset key\n";
    s += axes(panels[i], y_scale) + lines(panels[i], y_scale);
  }
  run_gnuplot(s + "unset multiplot\n", png);
}

void draw(const BarPlot& plot, const std::string& png) {
  double largest = 0;
  for (const auto& b : plot.bars) {
    for (const auto& v : b.values) largest = std::max(largest, v.hi);
  }
  const auto [scale, unit] = unit_of(Unit::seconds, largest);
  std::string s = header(png, 760, 480) + "set key outside right top vertical\nset title " + quoted(plot.title) + "\n";
  s += "set ylabel " + quoted(plot.ylabel + " (" + unit + ")") + "\n";
  s += "set style data histogram\nset style histogram errorbars gap 1 lw 1.5\nset style fill solid 0.85 border -1\n";
  s += "set boxwidth 0.9\nset yrange [0:*]\nset xtics scale 0\n";
  std::string command = "plot ";
  std::string data;
  for (std::size_t i = 0; i < plot.bars.size(); ++i) {
    const BarSeries& b = plot.bars[i];
    command += std::string(i > 0 ? ", " : "") + "'-' using 2:3:4:xtic(1) lc rgb " + quoted(b.color) + " title " + quoted(b.name);
    for (std::size_t g = 0; g < plot.groups.size() && g < b.values.size(); ++g) {
      const PlotPoint& v = b.values[g];
      data += data_field(plot.groups[g]) + " " + fixed_g(v.y / scale) + " " + fixed_g(v.lo / scale) + " " + fixed_g(v.hi / scale) + "\n";
    }
    data += "e\n";
  }
  run_gnuplot(s + command + "\n" + data, png);
}

}  // namespace imgbench
