// H5File's committed states (hdf5_file.hpp): what a statement reads, read from the file and published whole.
// Version 2 readers read /commit, /ids and /labels as a seqlock (hdf5_format.hpp) and read past a commit being
// applied in place (its journal holds the old values).
#include <thread>

#include "hdf5_file.hpp"
#include "hdf5_file_end.hpp"
#include "hdf5_open.hpp"

namespace imgstore::hdf5 {

namespace {

void build_index(Committed& c, const std::string& what) {
  for (std::uint64_t r = 0; r < c.rows; ++r) {
    const std::int64_t id = c.row_ids[r];
    if (id < 0) continue;
    if (const auto [it, fresh] = c.index.emplace(id, r); !fresh) {
      throw Error(what + ": /ids holds id " + std::to_string(id) + " twice (rows " + std::to_string(it->second) + " and " +
                      std::to_string(r) + ")",
                  ErrorKind::corrupt);
    }
  }
}

}  // namespace

std::optional<std::uint64_t> Committed::row_of(std::int64_t id) const {
  constexpr std::uint32_t kTableAfter = 256;  // lookups before a table pays for itself
  if (by_id_.empty() && ++lookups_ == kTableAfter && !index.empty() && index.begin()->first >= 0) {
    const auto top = static_cast<std::uint64_t>(index.rbegin()->first);
    if (top < 2 * index.size() + 4096) {  // dense: the table is at most about twice the map's entries
      by_id_.assign(top + 1, kNoRow);
      for (const auto& [key, row] : index) by_id_[static_cast<std::uint64_t>(key)] = row;
    }
  }
  if (!by_id_.empty()) {
    if (id < 0 || static_cast<std::uint64_t>(id) >= by_id_.size() || by_id_[static_cast<std::uint64_t>(id)] == kNoRow) {
      return std::nullopt;
    }
    return by_id_[static_cast<std::uint64_t>(id)];
  }
  const auto it = index.find(id);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

// A store of shape 'any': /offsets and /shapes of c's rows, and where they end in /images (`n_images` bytes
// long). That end is the last row's: a damaged last entry is a damaged file, as a damaged /commit is; any other
// row's entries are checked when that row is read (Hdf5Store::ragged_row), so one damaged row stays one.
void H5File::read_ragged_rows(Committed& c, std::uint64_t n_images, const char* says, const std::string& what) const {
  c.row_offsets.resize(c.rows);
  c.row_dims.resize(c.rows);
  if (c.rows == 0) return;
  read(Dataset::offsets, 0, c.rows, c.row_offsets.data(), what + ": reading /offsets");
  read(Dataset::shapes, 0, c.rows, c.row_dims.data(), what + ": reading /shapes");
  const auto end = row_end(c.row_offsets.back(), c.row_dims.back(), n_images);
  if (!end) {
    const RowDims& d = c.row_dims.back();
    throw Error(what + " says (" + says + ") it has " + std::to_string(c.rows) + " rows, but the last one's pixels (" +
                    std::to_string(d[0]) + "x" + std::to_string(d[1]) + "x" + std::to_string(d[2]) + " at byte " +
                    std::to_string(c.row_offsets.back()) + ") are not within /images (" + std::to_string(n_images) +
                    " bytes) (damaged file)",
                ErrorKind::corrupt);
  }
  c.bytes = *end;
}

// Reads rows [0, rows) of /ids and /labels into a new committed state (not yet indexed).
std::shared_ptr<Committed> H5File::read_rows(const std::string& table, std::uint64_t rows, const char* says) const {
  const std::string what = where(table);
  const std::uint64_t n_images = extent(Dataset::images, what);
  const std::uint64_t n_labels = extent(Dataset::labels, what);
  const std::uint64_t n_ids = extent(Dataset::ids, what);
  const std::uint64_t n_checksums = checksummed() ? extent(Dataset::checksums, what) : rows;
  const std::uint64_t n_offsets = ragged() ? extent(Dataset::offsets, what) : rows;
  const std::uint64_t n_shapes = ragged() ? extent(Dataset::shapes, what) : rows;
  if ((!ragged() && rows > n_images) || rows > n_labels || rows > n_ids || rows > n_checksums || rows > n_offsets ||
      rows > n_shapes) {
    throw Error(what + " says (" + says + ") it has " + std::to_string(rows) + " rows but " +
                    (ragged() ? std::string() : "/images has " + std::to_string(n_images) + ", ") + "/labels " +
                    std::to_string(n_labels) + ", /ids " + std::to_string(n_ids) +
                    (checksummed() ? ", /checksums " + std::to_string(n_checksums) : std::string()) +
                    (ragged() ? ", /offsets " + std::to_string(n_offsets) + ", /shapes " + std::to_string(n_shapes)
                              : std::string()) +
                    " (damaged file)",
                ErrorKind::corrupt);
  }
  auto c = std::make_shared<Committed>();
  c->rows = rows;
  c->row_ids.resize(rows);
  c->row_labels.resize(rows);
  if (ragged()) read_ragged_rows(*c, n_images, says, what);
  c->images_end = images_end(*this, image_length(*c));
  if (rows > 0) {
    read(Dataset::ids, 0, rows, c->row_ids.data(), what + ": reading /ids");
    read(Dataset::labels, 0, rows, c->row_labels.data(), what + ": reading /labels");
    if (checksummed()) {
      c->row_checksums.resize(rows);
      read(Dataset::checksums, 0, rows, c->row_checksums.data(), what + ": reading /checksums");
    }
  }
  return c;
}

// Version 2 readers: SWMR readers see other processes' writes only after H5Drefresh, which also evicts the
// dataset's cached metadata but reopens it with the default chunk cache (1 MiB): reopened with ours
// (open_with_cache) afterwards, the datasets read as before.
void H5File::refresh_datasets(const std::string& what) {
  try {
    for (const auto& [d, name] : {std::pair{&ids_, kIds}, std::pair{&labels_, kLabels}, std::pair{&images_, kImages},
                                  std::pair{&checksums_, kChecksums}, std::pair{&offsets_, kOffsets},
                                  std::pair{&shapes_, kShapes}}) {
      if (!*d) continue;  // /checksums before version 3, /offsets and /shapes of a one-shape store
      checked(H5Drefresh(d->get()), what + ": H5Drefresh");
      d->reset();  // closed first: an open dataset opened again shares its chunk cache
      *d = open_with_cache(file_.get(), name, what + ": reopening a dataset");
    }
  } catch (...) {
    close();  // all the handles or none: the next read opens the file again
    throw;
  }
}

// Publishes a state read at /commit = `seen` (its index built).
void H5File::publish(std::shared_ptr<Committed> c, const CommitWord& seen, const std::string& what) {
  c->generation = seen.generation;
  build_index(*c, what);
  committed_ = std::move(c);
}

// A reader that finds /commit odd (`seen`: a live writer is changing committed rows in place) reads the state
// before that commit instead of waiting for it: /ids and /labels up to the old row count (/commit keeps it
// while odd), THEN the journal, THEN /commit again. If /commit still reads `seen`, the writer was inside this
// one commit's odd phase throughout, in which the journal goes from absent to partial to complete (written
// and synced before the first in-place write) and stays so until /commit turns even: a complete journal names
// every row that may have been changed in place and holds its old values, which replace what was read; a
// missing or incomplete one means no in-place write had begun when it was looked for, so none had when the
// rows were read before. A journal of an earlier commit cannot be there: every transaction starts by
// removing one (recover_v2, under the writer lock), and a journal for another row count is refused anyway.
// Pixels never change in place. False: the read raced the commit's end (or failed), read again.
bool H5File::read_before_commit(const std::string& table, const CommitWord& seen) {
  const std::string what = where(table);
  try {
    refresh_datasets(what);
    auto c = read_rows(table, seen.rows, "/commit");
    if (const auto journal = read_journal(path_, what); journal && *journal) {
      if ((*journal)->rows != seen.rows) return false;
      for (const auto& e : (*journal)->entries) {
        if (e.row >= c->rows) return false;
        c->row_ids[e.row] = e.id;
        c->row_labels[e.row] = e.label;
        if ((*journal)->checksums && e.row < c->row_checksums.size()) c->row_checksums[e.row] = e.checksum;
      }
    }
    if (read_commit(what + ": reading /commit") != seen) return false;
    publish(std::move(c), seen, what);
    return true;
  } catch (const Error&) {
    return false;  // a read that raced a commit may fail: read again, as for an even generation
  }
}

// Version 2: the seqlock read of hdf5_format.hpp. /commit, then /ids and /labels (refreshed), then /commit
// again; a changed /commit (either word: one_commit) means read again. An odd generation (a commit changing
// rows in place) is read past (read_before_commit), unless its writer died: then it is recovered.
// Unchanged since the last read: nothing to do. Inside this process's transaction nobody else writes.
void H5File::load_committed_v2(const std::string& table, std::chrono::milliseconds timeout) {
  if (committed_->generation != ~std::uint64_t{0} && commit_fd_ && !writable_) {
    // Every statement comes here: unchanged since the last read (the common case) costs a 16-byte pread of
    // /commit and no allocation. An odd one read before stays the state before its commit while /commit does
    // not change.
    const auto [generation, rows] = read_commit({});
    if (generation == committed_->generation && rows == committed_->rows) return;
  }
  const std::string what = where(table);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  auto next_recovery = start;  // an odd generation is first checked for a dead writer (lock free) at once
  while (true) {
    if (!file_) open_handles(table, Access::swmr_read, shape_);  // closed by a read that raced a commit
    const CommitWord seen = read_commit(what + ": reading /commit");
    const auto [generation, rows] = seen;
    if (generation % 2 == 0) {
      if (committed_->generation == generation && committed_->rows == rows) return;
      try {
        if (!writable_) refresh_datasets(what);
        auto c = read_rows(table, rows, "/commit");
        if (writable_ || one_commit(seen, read_commit(what + ": reading /commit"))) {
          publish(std::move(c), seen, what);
          return;
        }
      } catch (const Error&) {
        // A read that raced a commit may fail; only one that did not race is an error.
        if (writable_ || one_commit(seen, read_commit(what + ": reading /commit"))) throw;
      }
    } else if (!writable_) {
      if (std::chrono::steady_clock::now() >= next_recovery) {
        // If the writer lock is free, the writer died mid-commit: recover (under the lock), then read again.
        recover_abandoned(table);
        next_recovery = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        continue;
      }
      if (read_before_commit(table, seen)) return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(where(table) + " has a commit being applied by another process (generation " +
                      std::to_string(generation) + "); waited " + std::to_string(timeout.count()) +
                      " ms, try again after it commits",
                  ErrorKind::busy);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Reads the committed state (version 1: the rows attribute, /ids, /labels) and publishes it. Rows past the
// committed count, left by a transaction that did not commit, are ignored.
void H5File::load_committed(const std::string& table, std::chrono::milliseconds timeout) {
  if (swmr()) {
    load_committed_v2(table, timeout);
    return;
  }
  const std::string what = where(table);
  std::uint64_t rows = 0;
  if (H5Aexists(file_.get(), kRowsAttribute) > 0) {
    const Hid attr = checked(H5Aopen(file_.get(), kRowsAttribute, H5P_DEFAULT), H5Aclose, what);
    checked(H5Aread(attr.get(), H5T_NATIVE_UINT64, &rows), what + ": reading the rows attribute");
  } else {
    rows = extent(Dataset::ids, what);  // written by another tool: every row counts
  }
  auto c = read_rows(table, rows, "the rows attribute");
  build_index(*c, what);
  committed_ = std::move(c);
}

void H5File::refresh(const std::string& table, std::chrono::milliseconds timeout) {
  if (!swmr() || writing_ || writable_) return;
  ensure_open(table, timeout);
  load_committed(table, timeout);
}

}  // namespace imgstore::hdf5
