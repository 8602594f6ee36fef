#include "shard_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

#include <zlib.h>

#include "error.hpp"
#include "shard_folder.hpp"
#include "shard_manifest.hpp"

namespace imgstore::sharded {

namespace {

// The file: this header, then rows of id (int64), label (int64), in a table of shape 'any' the image's height,
// width, channels and a zero (uint32 each), the pixels and a CRC-32 of those (uint32), in this machine's byte order (the journal never leaves the machine that wrote it: it lives only while a commit
// is unfinished). The CRC turns a damaged row into an error instead of wrong pixels written back.
constexpr std::string_view kHeader = "imgstore-undo 2\n";
constexpr std::size_t kRowHead = 16;  // id and label
constexpr std::size_t kShapeHead = 16;  // height, width, channels, zero: a table of shape 'any'
constexpr std::size_t kRowCrc = 4;
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

std::uint32_t crc_of(std::span<const std::uint8_t> bytes) {
  return static_cast<std::uint32_t>(crc32(0L, bytes.data(), static_cast<uInt>(bytes.size())));
}

std::string journal_path(const std::string& folder) { return folder + "/" + kJournalName; }

// A number in this machine's byte order (the journal's), appended or read back.
template <typename T>
void append_raw(std::vector<std::uint8_t>& out, T v) {
  std::uint8_t bytes[sizeof v];
  std::memcpy(bytes, &v, sizeof v);
  out.insert(out.end(), bytes, bytes + sizeof v);
}

template <typename T>
T read_raw(const std::uint8_t* p) {
  T v{};
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

CommitJournal::CommitJournal(std::string table, std::string folder, const Shape& shape)
    : table_(std::move(table)), path_(journal_path(folder)), shape_(shape) {}

void CommitJournal::inserted(std::int64_t id) {
  inserted_.push_back(id);
  inserted_set_.add(id);
}

void CommitJournal::save(const Image& before) {
  if (broken_) {
    throw Error("table " + table_ + ": the undo journal '" + path_ + "' could not be written earlier in this "
                "transaction; roll it back", ErrorKind::generic);
  }
  const Shape& shape = shape_.any ? before.shape : shape_;
  if (before.pixels.size() != shape.bytes()) {
    throw Error("table " + table_ + ": undo journal '" + path_ + "': a row of " + std::to_string(before.pixels.size()) +
                " bytes; expected " + std::to_string(shape.bytes()));
  }
  if (!file_) {
    file_ = open_or_throw(path_, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, "sharded table undo journal");
    buffer_.assign(kHeader.begin(), kHeader.end());
  }
  const std::size_t start = buffer_.size();
  append_raw<std::int64_t>(buffer_, before.id);
  append_raw<std::int64_t>(buffer_, before.label);
  if (shape_.any) {
    for (const std::uint32_t d : {shape.height, shape.width, shape.channels, std::uint32_t{0}}) append_raw(buffer_, d);
  }
  buffer_.insert(buffer_.end(), before.pixels.begin(), before.pixels.end());
  const std::uint32_t crc = crc_of({buffer_.data() + start, buffer_.size() - start});
  const auto* crc_bytes = reinterpret_cast<const std::uint8_t*>(&crc);
  buffer_.insert(buffer_.end(), crc_bytes, crc_bytes + kRowCrc);
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
  try {
    write_all(file_.get(), buffer_, path_, "table " + table_ + ": undo journal");
  } catch (...) {
    broken_ = true;  // part of the buffer may be in the file: never written again, never sealed
    throw;
  }
  buffer_.clear();
}

void CommitJournal::seal() {
  if (!file_) return;
  if (broken_) {
    throw Error("table " + table_ + ": the undo journal '" + path_ + "' could not be written; roll the transaction back",
                ErrorKind::generic);
  }
  flush();
  fsync_or_throw(file_.get(), path_, "sharded table undo journal");
}

void CommitJournal::end(bool remove_file) noexcept {
  if (file_) {
    file_ = Fd();
    if (remove_file) ::unlink(path_.c_str());  // a leftover is harmless: only a manifest naming it makes it count
  }
  buffer_.clear();
  broken_ = false;
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
    const auto step = static_cast<std::int64_t>(n);
    for (const std::size_t i : begun) {
      for (const IdRange& r : pending) {
        const auto offset = static_cast<std::int64_t>((i + n - shard_of(r.lo, n)) % n);
        if (r.hi - r.lo < offset) continue;  // the range holds no id of this shard
        for (std::int64_t id = r.lo + offset;; id += step) {
          shards[i]->erase(id);
          if (r.hi - id < step) break;  // the next would pass hi (or overflow)
        }
      }
    }
    if (saved > 0) {
      const std::string path = journal_path(folder);
      const Fd fd = open_or_throw(path, O_RDONLY | O_CLOEXEC, "sharded table undo journal");
      const auto short_file = [&](std::uint64_t rows_read) {
        return Error("the undo journal '" + path + "' is damaged: it holds " + std::to_string(rows_read) +
                         " whole rows after its header; the manifest says " + std::to_string(saved),
                     ErrorKind::corrupt);
      };
      std::vector<std::uint8_t> header(kHeader.size());
      if (read_up_to(fd.get(), header, path, "sharded table undo journal") != header.size() ||
          std::string_view(reinterpret_cast<const char*>(header.data()), header.size()) != kHeader) {
        throw Error("the undo journal '" + path + "' does not start with \"imgstore-undo 2\"", ErrorKind::corrupt);
      }
      const Shape& table_shape = shards.front()->shape();
      const std::size_t head = kRowHead + (table_shape.any ? kShapeHead : 0);
      std::vector<std::uint8_t> row;
      for (std::uint64_t k = 0; k < saved; ++k) {
        row.resize(head);
        if (read_up_to(fd.get(), row, path, "sharded table undo journal") != row.size()) throw short_file(k);
        Shape shape = table_shape;
        if (table_shape.any) {
          try {
            const std::uint8_t* const dims = row.data() + kRowHead;
            shape = make_shape(read_raw<std::uint32_t>(dims), read_raw<std::uint32_t>(dims + 4),
                               read_raw<std::uint32_t>(dims + 8), "the undo journal '" + path + "'");
          } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (row " + std::to_string(k) + ")", ErrorKind::corrupt);
          }
        }
        row.resize(head + shape.bytes() + kRowCrc);
        const std::span<std::uint8_t> rest(row.data() + head, shape.bytes() + kRowCrc);
        if (read_up_to(fd.get(), rest, path, "sharded table undo journal") != rest.size()) throw short_file(k);
        const std::size_t body = row.size() - kRowCrc;
        std::uint32_t crc = 0;
        std::memcpy(&crc, row.data() + body, kRowCrc);
        if (crc != crc_of({row.data(), body})) {
          throw Error("the undo journal '" + path + "' is damaged: row " + std::to_string(k) + " fails its CRC",
                      ErrorKind::corrupt);
        }
        const Image before{read_raw<std::int64_t>(row.data()), read_raw<std::int64_t>(row.data() + 8),
                           {row.data() + head, body - head}, shape};
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

void recover_unfinished(const std::string& table, const std::string& folder, Manifest& m,
                        const std::vector<std::unique_ptr<Store>>& shards) {
  try {
    undo_commit(folder, shards, std::vector<bool>(shards.size(), true), m.pending, m.undo);
  } catch (const Error& e) {
    throw Error("table " + table + ": cannot roll back the commit a writer left unfinished in '" + folder + "': " +
                    e.what(),
                e.kind());
  }
  for (std::size_t i = 0; i < shards.size(); ++i) m.shards[i].rows = shards[i]->count();
  m.pending.clear();
  m.undo = 0;
  ++m.generation;
  write_manifest(folder, m);
  ::unlink(journal_path(folder).c_str());
}

std::optional<Manifest> try_recover(const std::string& table, const std::string& folder,
                                    const std::vector<std::unique_ptr<Store>>& shards) {
  const WriterLock lock = lock_writer(table, folder, std::chrono::milliseconds(0), false);  // throws if it may not write
  if (!lock) return std::nullopt;
  auto m = read_manifest(folder);
  if (m && m->unfinished()) recover_unfinished(table, folder, *m, shards);
  return m;
}

}  // namespace imgstore::sharded
