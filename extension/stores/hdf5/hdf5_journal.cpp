#include "hdf5_journal.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <filesystem>

#include "posix_file.hpp"

namespace imgstore {

namespace {

constexpr char kMagic[8] = {'I', 'M', 'G', 'J', 'R', 'N', 'L', '1'};
constexpr char kMagic2[8] = {'I', 'M', 'G', 'J', 'R', 'N', 'L', '2'};
constexpr std::size_t kHeader = 8 + 8 + 8;
constexpr std::size_t entry_bytes(bool checksums) { return checksums ? 32 : 24; }

void put64(std::vector<std::uint8_t>& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
std::uint64_t get64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
std::uint32_t crc_of(std::span<const std::uint8_t> bytes) {
  return static_cast<std::uint32_t>(crc32_z(crc32_z(0, nullptr, 0), bytes.data(), bytes.size()));
}


}  // namespace

std::vector<std::uint8_t> encode_journal(const Journal& journal) {
  const char* magic = journal.checksums ? kMagic2 : kMagic;
  std::vector<std::uint8_t> out(magic, magic + 8);
  put64(out, journal.rows);
  put64(out, journal.entries.size());
  for (const auto& e : journal.entries) {
    put64(out, e.row);
    put64(out, static_cast<std::uint64_t>(e.id));
    put64(out, static_cast<std::uint64_t>(e.label));
    if (journal.checksums) put64(out, e.checksum);
  }
  const std::uint32_t crc = crc_of(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(crc >> (8 * i)));
  return out;
}

std::optional<Journal> decode_journal(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kHeader + 4) return std::nullopt;
  Journal journal;
  if (std::equal(kMagic2, kMagic2 + 8, bytes.begin())) {
    journal.checksums = true;
  } else if (!std::equal(kMagic, kMagic + 8, bytes.begin())) {
    return std::nullopt;
  }
  const std::size_t entry = entry_bytes(journal.checksums);
  journal.rows = get64(bytes.data() + 8);
  const std::uint64_t n = get64(bytes.data() + 16);
  // Divide instead of multiplying: a crafted n must not overflow the size check.
  if (n > (bytes.size() - kHeader - 4) / entry || kHeader + n * entry + 4 != bytes.size()) return std::nullopt;
  const std::size_t body = kHeader + n * entry;
  std::uint32_t stored = 0;
  for (int i = 3; i >= 0; --i) stored = (stored << 8) | bytes[body + static_cast<std::size_t>(i)];
  if (stored != crc_of(bytes.first(body))) return std::nullopt;
  journal.entries.resize(n);
  for (std::uint64_t i = 0; i < n; ++i) {
    const std::uint8_t* p = bytes.data() + kHeader + i * entry;
    journal.entries[i] = {get64(p), static_cast<std::int64_t>(get64(p + 8)), static_cast<std::int64_t>(get64(p + 16)),
                          journal.checksums ? get64(p + 24) : 0};
  }
  return journal;
}

std::string journal_path(const std::string& store_path) { return store_path + "-journal"; }

void write_journal(const std::string& store_path, const Journal& journal, const std::string& what) {
  const std::string path = journal_path(store_path);
  write_synced(path, encode_journal(journal), what);
  fsync_parent_directory(path, what);
}

std::optional<std::optional<Journal>> read_journal(const std::string& store_path, const std::string& what) {
  const std::string path = journal_path(store_path);
  if (::access(path.c_str(), F_OK) != 0) return std::nullopt;
  std::vector<std::uint8_t> bytes;
  read_whole(path, bytes, what);
  return decode_journal(bytes);
}

void remove_journal(const std::string& store_path, const std::string& what) {
  const std::string path = journal_path(store_path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(what + ": cannot remove '" + path + "'", errno);
  fsync_parent_directory(path, what);
}

}  // namespace imgstore
