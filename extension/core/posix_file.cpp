#include "posix_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "error.hpp"

namespace imgstore {

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void throw_errno(const std::string& message, int err) {
  ErrorKind kind = ErrorKind::generic;
  if (err == ENOSPC || err == EDQUOT) kind = ErrorKind::full;
  if (err == ENOENT || err == EACCES || err == ENOTDIR || err == EISDIR) kind = ErrorKind::cantopen;
  if (err == EWOULDBLOCK) kind = ErrorKind::busy;
  throw Error(message + ": " + std::strerror(err), kind);
}

void require_writable(const std::string& table, const std::string& path) {
  if (::access(path.c_str(), W_OK) == 0) return;
  const int err = errno;
  if (err != EROFS && err != EACCES && err != EPERM) return;  // the write itself reports anything else
  throw_read_only(table, path, err);
}

void throw_read_only(const std::string& table, const std::string& path, int err) {
  throw Error("table " + table + ": the store '" + path + "' is read-only (" + std::strerror(err) +
                  "); it can be read but not written",
              ErrorKind::readonly);
}

bool try_ofd_lock(int fd, short type, off_t byte) {
  struct flock lock{};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = byte;
  lock.l_len = 1;
  if (::fcntl(fd, F_OFD_SETLK, &lock) == 0) return true;
  if (errno == EWOULDBLOCK || errno == EAGAIN || errno == EACCES || errno == EINTR) return false;
  throw_errno("fcntl(F_OFD_SETLK) failed", errno);
}

Fd open_or_throw(const std::string& path, int flags, const std::string& what, int mode) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) throw_errno(what + ": cannot open '" + path + "'", errno);
  return Fd(fd);
}

void write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& path, const std::string& what) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what + ": cannot write '" + path + "'", errno);
    }
    done += static_cast<std::size_t>(n);
  }
}

void read_whole(const std::string& path, std::vector<std::uint8_t>& out, const std::string& what) {
  const Fd fd = open_or_throw(path, O_RDONLY, what);
  read_whole(fd.get(), path, out, what);
}

void read_whole(int fd, const std::string& path, std::vector<std::uint8_t>& out, const std::string& what) {
  struct stat st{};
  if (::fstat(fd, &st) != 0) throw_errno(what + ": cannot stat '" + path + "'", errno);
  out.resize(static_cast<std::size_t>(st.st_size));
  out.resize(read_up_to(fd, out, path, what));  // the file may have shrunk under us: what is there
}

std::size_t read_up_to(int fd, std::span<std::uint8_t> out, const std::string& path, const std::string& what) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno(what + ": cannot read '" + path + "'", errno);
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  return done;
}

void write_synced(const std::string& path, std::span<const std::uint8_t> bytes, const std::string& what) {
  const Fd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC, what);
  write_all(fd.get(), bytes, path, what);
  fsync_or_throw(fd.get(), path, what);
}

void write_synced(const std::string& path, std::string_view text, const std::string& what) {
  write_synced(path, {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()}, what);
}

void fsync_or_throw(int fd, const std::string& path, const std::string& what) {
  if (::fsync(fd) != 0) throw_errno(what + ": cannot sync '" + path + "'", errno);
}

void fsync_parent_directory(const std::string& path, const std::string& what) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const Fd fd = open_or_throw(dir, O_RDONLY | O_DIRECTORY, what);
  fsync_or_throw(fd.get(), dir, what);
}

}  // namespace imgstore
