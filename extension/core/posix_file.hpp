// Small RAII helpers over POSIX file descriptors, with errors that name the path and say what failed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
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

// Reads into `out` until it is full or the file ends (retrying short reads); returns the bytes read.
std::size_t read_up_to(int fd, std::span<std::uint8_t> out, const std::string& path, const std::string& what);

// Replaces `out` with the whole file's bytes, reusing its capacity (the second: an open file, named `path`).
void read_whole(const std::string& path, std::vector<std::uint8_t>& out, const std::string& what);
void read_whole(int fd, const std::string& path, std::vector<std::uint8_t>& out, const std::string& what);

void fsync_or_throw(int fd, const std::string& path, const std::string& what);
// Creates or truncates `path`, writes the bytes or text and syncs the file (not its directory).
void write_synced(const std::string& path, std::span<const std::uint8_t> bytes, const std::string& what);
void write_synced(const std::string& path, std::string_view text, const std::string& what);
// Syncs the directory holding `path` ("." for a bare name), so a name just created, renamed or removed there
// is durable.
void fsync_parent_directory(const std::string& path, const std::string& what);

// Throws Error with errno's text; ENOSPC/EDQUOT become ErrorKind::full.
[[noreturn]] void throw_errno(const std::string& message, int err);

// Throws Error(readonly) when `path` cannot be written: a read-only mount (EROFS) or no permission (EACCES,
// EPERM). Called before a transaction's first change, so a store one may only read serves SELECTs and refuses
// writes with one clear message instead of a failed open or a half-made transaction.
void require_writable(const std::string& table, const std::string& path);
// "table t: the store 'path' is read-only (Read-only file system); it can be read but not written"
[[noreturn]] void throw_read_only(const std::string& table, const std::string& path, int err);

// One try of an open-file-description lock (F_OFD_SETLK) on one byte: true when taken (or released, F_UNLCK),
// false while another descriptor holds it, an Error for anything else. OFD locks belong to the descriptor, so
// two connections of one process exclude each other too, and closing another descriptor of the file keeps them.
bool try_ofd_lock(int fd, short type, off_t byte);

}  // namespace imgstore
