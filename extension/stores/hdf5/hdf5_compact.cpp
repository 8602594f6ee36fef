// H5File::compact (hdf5_file.hpp): a new file holding only the live images, renamed over the old one.
//
// Why a new file: rows are never overwritten in place (readers of other processes read committed pixels
// without a lock), so deleted and replaced rows keep their space until the store is rewritten. The new file is
// written beside the old one under the old one's writer lock, made durable, then renamed over the path: the
// rename is the commit point, so a crash leaves the old file or the new one, whole (a leftover `.compact` is
// removed by the next compaction). Readers that have the old file open keep reading it (its inode lives on);
// every table notices the new file at its next statement (replaced()), and a writer that had the old file
// open finds its writer lock on the wrong file and reopens (make_writable).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "checksum.hpp"
#include "hdf5_file.hpp"

namespace imgstore::hdf5 {

namespace {

std::string compact_path(const std::string& path) { return path + ".compact"; }


}  // namespace

// Reads the images of `entries` (id, row) into `out`'s new rows 0.., a block at a time; each run of consecutive
// rows is one read. Each image is checked against its checksum (a damaged one stops the compaction: it is not
// copied as if it were sound) and `checksums` gets the new file's values.
void H5File::copy_images(H5File& out, const std::vector<std::pair<std::int64_t, std::uint64_t>>& entries,
                         std::vector<std::uint64_t>& checksums, const std::string& table) {
  const Committed& c = *committed_;
  const std::size_t bytes = shape_.bytes();
  const std::uint64_t block = block_rows(out.chunk_rows(), bytes, kScanBlockBytes);
  std::vector<std::uint8_t> buffer;
  const std::string what = where(table) + ": compacting";
  for (std::uint64_t first = 0; first < entries.size(); first += block) {
    const std::uint64_t n = std::min<std::uint64_t>(block, entries.size() - first);
    buffer.resize(n * bytes);
    for (std::uint64_t i = 0; i < n;) {
      std::uint64_t run = 1;
      while (i + run < n && entries[first + i + run].second == entries[first + i].second + run) ++run;
      transfer(Dataset::images, false, entries[first + i].second, run, buffer.data() + i * bytes, what);
      i += run;
    }
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto [id, row] = entries[first + i];
      const std::span<const std::uint8_t> px(buffer.data() + i * bytes, bytes);
      const std::uint64_t sum = image_checksum(id, c.row_labels[row], px);
      if (checksummed() && sum != c.row_checksums[row]) throw damaged_image(table, id, path_, c.row_checksums[row], sum);
      checksums.push_back(sum);
    }
    out.write_images(first, n, buffer.data(), out.where(table) + ": writing the compacted images");
  }
}

// A store of shape 'any': the same, each run of rows consecutive in the file read at once, the images written
// one after another into `out`'s 1-D /images; `next` gets their offsets, shapes, checksums and end.
void H5File::copy_ragged_images(H5File& out, const std::vector<std::pair<std::int64_t, std::uint64_t>>& entries,
                                Committed& next, const std::string& table) {
  const Committed& c = *committed_;
  const std::string what = where(table) + ": compacting";
  std::vector<std::uint8_t> buffer;  // the images read, not yet written to `out` (they start at out_end)
  std::uint64_t out_end = 0;         // bytes written to out's /images
  const auto write_out = [&] {
    out.write_images(out_end, buffer.size(), buffer.data(), out.where(table) + ": writing the compacted images");
    out_end += buffer.size();
    buffer.clear();
  };
  for (std::size_t i = 0; i < entries.size();) {
    // A run: rows that follow each other in /images, up to about a scan block.
    std::size_t run = 0;
    std::uint64_t run_bytes = 0;
    const std::uint64_t start = c.row_offsets[entries[i].second];
    while (i + run < entries.size()) {
      const auto [id, row] = entries[i + run];
      const auto end = row_end(c.row_offsets[row], c.row_dims[row], c.bytes);
      if (!end) throw damaged_entry(table, id, path_, c.row_offsets[row], c.row_dims[row], c.bytes);
      if (run > 0 && (row != entries[i + run - 1].second + 1 || c.row_offsets[row] != start + run_bytes ||
                      run_bytes >= kScanBlockBytes)) {
        break;
      }
      run_bytes = *end - start;
      ++run;
    }
    const std::size_t at = buffer.size();
    buffer.resize(at + run_bytes);
    transfer(Dataset::images, false, start, run_bytes, buffer.data() + at, what);
    for (std::size_t k = 0; k < run; ++k) {
      const auto [id, row] = entries[i + k];
      const RowDims& dims = c.row_dims[row];
      const std::uint64_t bytes = shape_of(dims)->bytes();
      const std::span<const std::uint8_t> px(buffer.data() + at + (c.row_offsets[row] - start), bytes);
      const std::uint64_t sum = image_checksum(id, c.row_labels[row], px) ^ shape_term(*shape_of(dims));
      if (checksummed() && sum != c.row_checksums[row]) throw damaged_image(table, id, path_, c.row_checksums[row], sum);
      next.row_checksums.push_back(sum);
      next.row_offsets.push_back(out_end + at + (c.row_offsets[row] - start));
      next.row_dims.push_back(dims);
    }
    i += run;
    if (buffer.size() >= kScanBlockBytes) write_out();
  }
  if (!buffer.empty()) write_out();
  next.bytes = out_end;
}

std::uint64_t H5File::compact(const std::string& table, std::chrono::milliseconds timeout) {
  const std::string what = where(table) + ": compacting";
  // This process's one transaction slot, then the writer lock on its own descriptor: the handles stay the
  // read-only ones (reopening them from the path after the rename would open the new file), so statements
  // of this process reading the old file go on reading it.
  refuse_inherited(table);
  const bool claimed = wait_for([&] {
    const Lock lock(hdf5_mutex());
    return !std::exchange(writing_, true);
  }, timeout);
  if (!claimed) throw_writer_busy(table, path_, "another connection in this process", timeout);
  struct Unclaim {
    H5File& f;
    ~Unclaim() {
      const Lock lock(hdf5_mutex());
      f.writing_ = false;
    }
  } unclaim{*this};
  const Lock lock(hdf5_mutex());
  if (!swmr()) {
    throw Error(where(table) + " is an hdf5 store of format version 1 (or an HDF5 file made by another tool), which "
                "imgstore does not rewrite; copy it into a new store instead", ErrorKind::readonly);
  }
  require_writable(table, path_);
  ensure_open(table, timeout);
  recover_abandoned(table);  // a writer that died mid-commit: its commit rolled back first
  const WriterLock held(writer_spot(), timeout, what + ": the writer lock");
  if (!held) throw_writer_busy(table, path_, "another process", timeout);
  struct stat locked{};
  if (::fstat(held.fd(), &locked) != 0 || locked.st_ino != inode_ || locked.st_dev != device_ || replaced()) {
    throw Error(where(table) + " was replaced by another compaction meanwhile; try again", ErrorKind::busy);
  }
  load_committed(table, timeout);  // the last commit (no writer can commit now)
  const std::shared_ptr<const Committed> state = committed_;
  const Committed& c = *state;
  if (c.generation % 2 != 0) {
    throw Error(where(table) + " has an interrupted commit; SELECT imgstore_repair('hdf5', '" + path_ + "') first",
                ErrorKind::busy);
  }
  const std::string temp = compact_path(path_);
  if (::unlink(temp.c_str()) != 0 && errno != ENOENT) throw_errno(what + ": cannot remove '" + temp + "'", errno);
  std::uint64_t live_bytes = c.index.size() * shape_.bytes();
  if (ragged()) {
    for (const auto& [id, row] : c.index) live_bytes += shape_of(c.row_dims[row]).value_or(Shape{}).bytes();
  }
  ensure_space(live_bytes + c.index.size() * (ragged() ? 48 : 24), what);
  const std::vector<std::pair<std::int64_t, std::uint64_t>> entries(c.index.begin(), c.index.end());  // id order
  try {
    auto out = open(table, temp, shape_, Compression{deflate_}, chunk_rows_, OpenMode::create_if_missing, timeout);
    out->begin_transaction(table, timeout);
    try {
      auto next = std::make_shared<Committed>();
      next->rows = entries.size();
      for (const auto& [id, row] : entries) {
        next->row_ids.push_back(id);
        next->row_labels.push_back(c.row_labels[row]);
        next->index.emplace_hint(next->index.end(), id, next->row_ids.size() - 1);
      }
      if (ragged()) {
        copy_ragged_images(*out, entries, *next, table);
      } else {
        copy_images(*out, entries, next->row_checksums, table);
      }
      // The generations go on from this file's, so a reader never takes the new file's state for the old one's.
      auto base = std::make_shared<Committed>();
      base->generation = c.generation;
      out->committed_ = std::move(base);
      out->commit(std::move(next), {}, out->where(table) + ": committing the compacted file");
    } catch (...) {
      out->end_transaction(table);
      throw;
    }
    out->end_transaction(table);
  } catch (...) {
    ::unlink(temp.c_str());
    throw;
  }
  // The commit point: the new file, synced by its commit, takes the path.
  if (::rename(temp.c_str(), path_.c_str()) != 0) {
    const int e = errno;
    ::unlink(temp.c_str());
    throw_errno(what + ": cannot rename '" + temp + "' to '" + path_ + "'", e);
  }
  fsync_parent_directory(path_, what);
  return entries.size();
}

}  // namespace imgstore::hdf5
