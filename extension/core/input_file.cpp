#include "input_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "error.hpp"

namespace imgstore {

InputFile::InputFile(const std::string& path, std::size_t block_bytes) : path_(path), buffer_(block_bytes) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) {
    throw Error("cannot open '" + path + "': " + std::strerror(errno), ErrorKind::cantopen);
  }
  if (!S_ISREG(st.st_mode)) throw Error("'" + path + "' is not a regular file", ErrorKind::cantopen);
  size_ = static_cast<std::uint64_t>(st.st_size);
  file_.reset(gzopen(path.c_str(), "rb"));
  if (!file_) throw Error("cannot open '" + path + "': " + std::strerror(errno), ErrorKind::cantopen);
  gzbuffer(file_.get(), 256 * 1024);
  // gzdirect is only meaningful after the first read: peek one block now.
  fill(1);
  compressed_ = gzdirect(file_.get()) == 0;
}

bool InputFile::fill(std::size_t want) {
  if (end_ - begin_ >= want) return true;
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() < want) buffer_.resize(want);
  while (!eof_ && end_ < want) {
    const auto room = static_cast<unsigned>(std::min<std::size_t>(buffer_.size() - end_, 1u << 30));
    const int got = gzread(file_.get(), buffer_.data() + end_, room);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file_.get(), &code);
      throw Error("'" + path_ + "' is corrupt: " + (message ? message : "read error"), ErrorKind::corrupt);
    }
    if (got == 0) {
      // zlib reports a gzip stream cut short only through gzerror.
      int code = 0;
      const char* message = gzerror(file_.get(), &code);
      if (code != Z_OK && code != Z_BUF_ERROR) {
        throw Error("'" + path_ + "' is corrupt: " + (message ? message : "read error"), ErrorKind::corrupt);
      }
      if (code == Z_BUF_ERROR) {
        throw Error("'" + path_ + "' is a truncated gzip stream: " + (message ? message : ""), ErrorKind::corrupt);
      }
      eof_ = true;
    }
    end_ += static_cast<std::size_t>(got);
  }
  return end_ - begin_ >= want;
}

std::optional<std::span<const std::uint8_t>> InputFile::read(std::size_t n, const std::string& what) {
  if (!fill(n)) {
    if (begin_ == end_) return std::nullopt;
    throw Error("'" + path_ + "' is truncated: " + what + " needs " + std::to_string(n) + " bytes, only " +
                    std::to_string(end_ - begin_) + " are left",
                ErrorKind::corrupt);
  }
  const std::span<const std::uint8_t> view(buffer_.data() + begin_, n);
  begin_ += n;
  return view;
}

bool InputFile::at_end() { return !fill(1); }

}  // namespace imgstore
