// Small RAII helpers over POSIX file descriptors, with errors that name the path and say what failed.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace imgstore {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Opens or throws Error naming `path` (ENOENT -> cantopen, ENOSPC -> full, ...).
Fd open_or_throw(const std::string& path, int flags, const std::string& what, int mode = 0644);

// Writes all bytes (retrying short writes) or throws; `what` prefixes the message.
void write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& path, const std::string& what);

// Replaces `out` with the whole file's bytes, reusing its capacity.
void read_whole(const std::string& path, std::vector<std::uint8_t>& out, const std::string& what);

void fsync_or_throw(int fd, const std::string& path, const std::string& what);

// Throws Error with errno's text; ENOSPC/EDQUOT become ErrorKind::full.
[[noreturn]] void throw_errno(const std::string& message, int err);

}  // namespace imgstore
