// A data file read front to back in large blocks, plain or gzip (zlib detects which), with errors that name
// the file. Shared by the cifar10() and idx() readers.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <memory>
#include <type_traits>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace imgstore {

class InputFile {
 public:
  explicit InputFile(const std::string& path, std::size_t block_bytes = std::size_t{1} << 20);
  ~InputFile() = default;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }
  bool compressed() const { return compressed_; }
  // Size on disk of a plain file (nullopt for gzip, whose uncompressed size is known only at its end).
  std::optional<std::uint64_t> plain_size() const { return compressed_ ? std::nullopt : std::optional(size_); }

  // Exactly n bytes, or nullopt at a clean end of file (no byte left). A partial read is an error saying
  // `what` was cut short. The view stays valid until the next call.
  std::optional<std::span<const std::uint8_t>> read(std::size_t n, const std::string& what);
  // True when no byte is left.
  bool at_end();

 private:
  bool fill(std::size_t want);

  struct GzClose {
    void operator()(gzFile f) const noexcept { gzclose(f); }
  };
  std::string path_;
  // A unique_ptr, not a raw handle: a constructor that throws after gzopen still closes it.
  std::unique_ptr<std::remove_pointer_t<gzFile>, GzClose> file_;
  bool compressed_ = false;
  std::uint64_t size_ = 0;
  std::vector<std::uint8_t> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  bool eof_ = false;
};

}  // namespace imgstore
