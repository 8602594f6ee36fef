#include "shard_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <string_view>

#include "error.hpp"
#include "shard_folder.hpp"
#include "shard_manifest.hpp"

namespace imgstore::sharded {

namespace {

// The file: this header, then rows of id (int64), label (int64) and the pixels, in this machine's byte order
// (the journal never leaves the machine that wrote it: it lives only while a commit is unfinished).
constexpr std::string_view kHeader = "imgstore-undo 1\n";
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

std::string journal_path(const std::string& folder) { return folder + "/" + kJournalName; }

void append_int(std::vector<std::uint8_t>& out, std::int64_t v) {
  std::uint8_t bytes[sizeof v];
  std::memcpy(bytes, &v, sizeof v);
  out.insert(out.end(), bytes, bytes + sizeof v);
}

std::int64_t read_int(const std::uint8_t* p) {
  std::int64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Reads exactly `out.size()` bytes or throws (a journal shorter than the manifest says is corrupt).
void read_exactly(int fd, std::vector<std::uint8_t>& out, const std::string& path) {
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read the undo journal '" + path + "'", errno);
    if (n == 0) {
      throw Error("the undo journal '" + path + "' ends early; the manifest says it holds more rows",
                  ErrorKind::corrupt);
    }
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void IdRangeSet::add(std::int64_t id) {
  auto next = by_lo_.upper_bound(id);  // the first range starting after id
  if (next != by_lo_.begin()) {
    auto prev = std::prev(next);
    if (id <= prev->second) return;  // already in
    if (id == prev->second + 1) {
      prev->second = id;
      if (next != by_lo_.end() && next->first == id + 1) {  // joins two ranges
        prev->second = next->second;
        by_lo_.erase(next);
      }
      return;
    }
  }
  if (next != by_lo_.end() && next->first == id + 1) {
    const std::int64_t hi = next->second;
    by_lo_.erase(next);
    by_lo_.emplace(id, hi);
    return;
  }
  by_lo_.emplace(id, id);
}

bool IdRangeSet::contains(std::int64_t id) const {
  const auto next = by_lo_.upper_bound(id);
  return next != by_lo_.begin() && id <= std::prev(next)->second;
}

std::vector<IdRange> IdRangeSet::ranges() const {
  std::vector<IdRange> out;
  out.reserve(by_lo_.size());
  for (const auto& [lo, hi] : by_lo_) out.push_back({lo, hi});
  return out;
}

CommitJournal::CommitJournal(std::string folder, std::size_t pixel_bytes)
    : path_(journal_path(folder)), pixel_bytes_(pixel_bytes) {}


void CommitJournal::inserted(std::int64_t id) {
  inserted_.push_back(id);
  inserted_set_.add(id);
}

void CommitJournal::save(const Image& before) {
  if (before.pixels.size() != pixel_bytes_) {
    throw Error("undo journal '" + path_ + "': a row of " + std::to_string(before.pixels.size()) + " bytes; expected " +
                std::to_string(pixel_bytes_));
  }
  if (!file_) {
    file_ = open_or_throw(path_, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, "sharded table undo journal");
    buffer_.assign(kHeader.begin(), kHeader.end());
  }
  append_int(buffer_, before.id);
  append_int(buffer_, before.label);
  buffer_.insert(buffer_.end(), before.pixels.begin(), before.pixels.end());
  saved_.add(before.id);
  ++saved_count_;
  if (buffer_.size() >= kFlushBytes) flush();
}

void CommitJournal::rewind(std::size_t mark) {
  if (mark >= inserted_.size()) return;
  inserted_.resize(mark);
  inserted_set_.clear();
  for (const std::int64_t id : inserted_) inserted_set_.add(id);
}

void CommitJournal::flush() {
  write_all(file_.get(), buffer_, path_, "sharded table undo journal");
  buffer_.clear();
}

void CommitJournal::seal() {
  if (!file_) return;
  flush();
  fsync_or_throw(file_.get(), path_, "sharded table undo journal");
}

void CommitJournal::end(bool remove_file) noexcept {
  if (file_) {
    file_ = Fd();
    if (remove_file) ::unlink(path_.c_str());  // a leftover is harmless: only a manifest naming it makes it count
  }
  buffer_.clear();
  inserted_.clear();
  inserted_set_.clear();
  saved_.clear();
  saved_count_ = 0;
}

void undo_commit(const std::string& folder, const std::vector<std::unique_ptr<Store>>& shards,
                 const std::vector<bool>& which, const std::vector<IdRange>& pending, std::uint64_t saved) {
  const std::size_t n = shards.size();
  std::vector<std::size_t> begun;
  try {
    for (std::size_t i = 0; i < n; ++i) {
      if (!which[i]) continue;
      shards[i]->begin();
      begun.push_back(i);
    }
    // Pending ids first: a row the journal holds is then written back even if the transaction had deleted and
    // inserted it again.
    for (const std::size_t i : begun) {
      for (const IdRange& r : pending) {
        const std::int64_t first = r.lo + static_cast<std::int64_t>((i + n - shard_of(r.lo, n)) % n);
        for (std::int64_t id = first; id <= r.hi && id >= r.lo; id += static_cast<std::int64_t>(n)) shards[i]->erase(id);
      }
    }
    if (saved > 0) {
      const std::string path = journal_path(folder);
      const Fd fd = open_or_throw(path, O_RDONLY | O_CLOEXEC, "sharded table undo journal");
      std::vector<std::uint8_t> header(kHeader.size());
      read_exactly(fd.get(), header, path);
      if (std::string_view(reinterpret_cast<const char*>(header.data()), header.size()) != kHeader) {
        throw Error("the undo journal '" + path + "' does not start with \"imgstore-undo 1\"", ErrorKind::corrupt);
      }
      std::vector<std::uint8_t> row(16 + shards.front()->shape().bytes());
      for (std::uint64_t k = 0; k < saved; ++k) {
        read_exactly(fd.get(), row, path);
        const Image before{read_int(row.data()), read_int(row.data() + 8), {row.data() + 16, row.size() - 16}};
        const std::size_t i = shard_of(before.id, n);
        if (which[i]) shards[i]->put(before, true);
      }
    }
    for (const std::size_t i : begun) shards[i]->sync();
  } catch (...) {
    for (const std::size_t i : begun) shards[i]->rollback();
    throw;
  }
}

void recover_unfinished(const std::string& folder, Manifest& m, const std::vector<std::unique_ptr<Store>>& shards) {
  undo_commit(folder, shards, std::vector<bool>(shards.size(), true), m.pending, m.undo);
  for (std::size_t i = 0; i < shards.size(); ++i) m.shards[i].rows = shards[i]->count();
  m.pending.clear();
  m.undo = 0;
  ++m.generation;
  write_manifest(folder, m);
  ::unlink(journal_path(folder).c_str());
}

std::optional<Manifest> try_recover(const std::string& table, const std::string& folder,
                                    const std::vector<std::unique_ptr<Store>>& shards) {
  Fd lock;
  try {
    lock = lock_writer(table, folder, std::chrono::milliseconds(0), false);
  } catch (const Error&) {
    return std::nullopt;  // a folder this process may not write
  }
  if (!lock) return std::nullopt;
  auto m = read_manifest(folder);
  if (m && m->unfinished()) recover_unfinished(folder, *m, shards);
  return m;
}

}  // namespace imgstore::sharded
