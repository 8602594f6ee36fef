// The open files of hdf5 stores (hdf5_file.hpp): one per file per process (the registry), their committed
// states (version 2: the seqlock read of /commit), recovery from an interrupted commit, and the changes between
// read-only and read-write around a transaction. hdf5_open.cpp opens and creates the files.
#include "hdf5_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "busy.hpp"
#include "file_registry.hpp"
#include "hdf5_file_end.hpp"
#include "hdf5_journal.hpp"
#include "hdf5_open.hpp"
#include "posix_file.hpp"

namespace imgstore::hdf5 {

namespace {

void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

FileRegistry<H5File>& registry() {
  static FileRegistry<H5File> r(FileRegistry<H5File>::Fork::reuse);  // see file_registry.hpp
  return r;
}

// Reads rows [0, rows) of /ids and /labels into a new committed state and indexes it.
std::shared_ptr<Committed> read_rows(H5File& f, const std::string& table, std::uint64_t rows, const char* says) {
  const std::string what = f.where(table);
  const std::uint64_t n_images = f.extent(f.images.get(), what);
  const std::uint64_t n_labels = f.extent(f.labels.get(), what);
  const std::uint64_t n_ids = f.extent(f.ids.get(), what);
  if (rows > n_images || rows > n_labels || rows > n_ids) {
    throw Error(what + " says (" + says + ") it has " + std::to_string(rows) + " rows but /images has " +
                    std::to_string(n_images) + ", /labels " + std::to_string(n_labels) + ", /ids " + std::to_string(n_ids) +
                    " (damaged file)",
                ErrorKind::corrupt);
  }
  auto c = std::make_shared<Committed>();
  c->rows = rows;
  c->row_ids.resize(rows);
  c->row_labels.resize(rows);
  c->images_end = images_end(f, rows);
  if (rows > 0) {
    f.transfer(f.ids.get(), false, 0, rows, H5T_NATIVE_INT64, c->row_ids.data(), what + ": reading /ids");
    f.transfer(f.labels.get(), false, 0, rows, H5T_NATIVE_INT64, c->row_labels.data(), what + ": reading /labels");
  }
  return c;
}

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

// Version 2 readers: SWMR readers see other processes' writes only after H5Drefresh, which also evicts the
// dataset's cached metadata but reopens it with the default chunk cache (1 MiB): reopened with ours
// (open_with_cache) afterwards, the datasets read as before.
void refresh_datasets(H5File& f, const std::string& what) {
  for (auto* d : {&f.ids, &f.labels, &f.images}) {
    checked(H5Drefresh(d->get()), what + ": H5Drefresh");
    d->reset();  // closed first: an open dataset opened again shares its chunk cache
    *d = open_with_cache(f.file.get(), d == &f.ids ? kIds : d == &f.labels ? kLabels : kImages,
                         what + ": reopening a dataset");
  }
}

// Publishes a state read at /commit = `seen` (its index built).
void publish(H5File& f, std::shared_ptr<Committed> c, const CommitWord& seen, const std::string& what) {
  c->generation = seen.generation;
  build_index(*c, what);
  f.committed = std::move(c);
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
bool read_before_commit(H5File& f, const std::string& table, const CommitWord& seen) {
  const std::string what = f.where(table);
  try {
    refresh_datasets(f, what);
    auto c = read_rows(f, table, seen.rows, "/commit");
    if (const auto journal = read_journal(f.path, what); journal && *journal) {
      if ((*journal)->rows != seen.rows) return false;
      for (const auto& e : (*journal)->entries) {
        if (e.row >= c->rows) return false;
        c->row_ids[e.row] = e.id;
        c->row_labels[e.row] = e.label;
      }
    }
    if (f.read_commit(what + ": reading /commit") != seen) return false;
    publish(f, std::move(c), seen, what);
    return true;
  } catch (const Error&) {
    return false;  // a read that raced a commit may fail: read again, as for an even generation
  }
}

// Version 2: the seqlock read of hdf5_format.hpp. /commit, then /ids and /labels (refreshed), then /commit
// again; a changed /commit (either word: one_commit) means read again. An odd generation (a commit changing
// rows in place) is read past (read_before_commit), unless its writer died: then it is recovered.
// Unchanged since the last read: nothing to do. Inside this process's transaction nobody else writes.
void recover_abandoned(H5File& f, const std::string& table);

void load_committed_v2(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.committed->generation != ~std::uint64_t{0} && f.commit_fd && !f.writable) {
    // Every statement comes here: unchanged since the last read (the common case) costs a 16-byte pread of
    // /commit and no allocation. An odd one read before stays the state before its commit while /commit does
    // not change.
    const auto [generation, rows] = f.read_commit({});
    if (generation == f.committed->generation && rows == f.committed->rows) return;
  }
  const std::string what = f.where(table);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  auto next_recovery = start;  // an odd generation is first checked for a dead writer (lock free) at once
  while (true) {
    const CommitWord seen = f.read_commit(what + ": reading /commit");
    const auto [generation, rows] = seen;
    if (generation % 2 == 0) {
      if (f.committed->generation == generation && f.committed->rows == rows) return;
      try {
        if (!f.writable) refresh_datasets(f, what);
        auto c = read_rows(f, table, rows, "/commit");
        if (f.writable || one_commit(seen, f.read_commit(what + ": reading /commit"))) {
          publish(f, std::move(c), seen, what);
          return;
        }
      } catch (const Error&) {
        // A read that raced a commit may fail; only one that did not race is an error.
        if (f.writable || one_commit(seen, f.read_commit(what + ": reading /commit"))) throw;
      }
    } else if (!f.writable) {
      if (std::chrono::steady_clock::now() >= next_recovery) {
        // If the writer lock is free, the writer died mid-commit: recover (under the lock), then read again.
        recover_abandoned(f, table);
        next_recovery = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
        continue;
      }
      if (read_before_commit(f, table, seen)) return;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error("table " + table + ": '" + f.path + "' has a commit being applied by another process (generation " +
                      std::to_string(generation) + "); waited " + std::to_string(timeout.count()) +
                      " ms, try again after it commits",
                  ErrorKind::busy);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Reads the committed state (version 1: the rows attribute, /ids, /labels) and publishes it. Rows past the
// committed count, left by a transaction that did not commit, are ignored; the next writer trims them.
void load_committed(H5File& f, const std::string& table, std::chrono::milliseconds timeout = kBusyTimeout) {
  if (f.version == 2) {
    load_committed_v2(f, table, timeout);
    return;
  }
  const std::string what = f.where(table);
  std::uint64_t rows = 0;
  if (H5Aexists(f.file.get(), kRowsAttribute) > 0) {
    const Hid attr = checked(H5Aopen(f.file.get(), kRowsAttribute, H5P_DEFAULT), H5Aclose, what);
    checked(H5Aread(attr.get(), H5T_NATIVE_UINT64, &rows), what + ": reading the rows attribute");
  } else {
    rows = f.extent(f.ids.get(), what);  // written by another tool: every row counts
  }
  auto c = read_rows(f, table, rows, "the rows attribute");
  build_index(*c, what);
  f.committed = std::move(c);
}

// Rolls back a commit that a crash interrupted after it began changing committed rows in place (see
// hdf5_journal.hpp). The file must be open read-write.
void roll_back_journal(H5File& f, const std::string& table, const Journal& journal) {
  const std::string what = f.where(table) + ": rolling back an interrupted commit (" + journal_path(f.path) + ")";
  for (const auto& e : journal.entries) {
    std::int64_t id = e.id;
    std::int64_t label = e.label;
    f.transfer(f.ids.get(), true, e.row, 1, H5T_NATIVE_INT64, &id, what);
    f.transfer(f.labels.get(), true, e.row, 1, H5T_NATIVE_INT64, &label, what);
  }
  f.write_rows_attribute(journal.rows, what);
  f.set_rows(journal.rows, what);
  f.flush_and_sync(what);
  remove_journal(f.path, what);
}

// Deals with the journal found beside the file, if any: a complete one is rolled back (the file must be open
// read-write); an incomplete one was never acted on (nothing changed in place before it was synced): removed.
void recover_journal(H5File& f, const std::string& table, const std::optional<std::optional<Journal>>& journal);

// Version 2 (the file open for SWMR writing, the writer lock held). A commit that changes rows in place makes
// /commit's generation odd (synced) before it writes its journal, and even again, with the new row count, as
// its commit point; then it removes the journal. So after a crash: a complete journal with an odd generation
// is rolled back; with an even one the commit had finished and the journal is only removed; an odd generation
// without a complete journal changed nothing in place yet. Either way the generation ends even and new.
void recover_v2(H5File& f, const std::string& table) {
  const std::string what = f.where(table) + ": recovering from an interrupted commit";
  const auto journal = read_journal(f.path, f.where(table));
  const auto [generation, rows] = f.read_commit(what);
  if (generation % 2 == 1) {
    std::uint64_t back_to = rows;
    if (journal && *journal) {
      for (const auto& e : (*journal)->entries) {
        std::int64_t id = e.id;
        std::int64_t label = e.label;
        f.transfer(f.ids.get(), true, e.row, 1, H5T_NATIVE_INT64, &id, what);
        f.transfer(f.labels.get(), true, e.row, 1, H5T_NATIVE_INT64, &label, what);
      }
      back_to = (*journal)->rows;
      f.set_rows(back_to, what);
      f.flush_and_sync(what);
    }
    f.write_commit(generation + 1, back_to, what);
    f.flush_and_sync(what);
  }
  if (journal) remove_journal(f.path, what);
}

void recover_journal(H5File& f, const std::string& table, const std::optional<std::optional<Journal>>& journal) {
  if (f.version == 2) {
    recover_v2(f, table);
    return;
  }
  if (!journal) return;
  if (*journal) {
    roll_back_journal(f, table, **journal);
  } else {
    remove_journal(f.path, f.where(table));
  }
}

// Before a commit changes committed rows in place: their old values go to the journal, made durable first,
// after /commit's generation is made odd (readers of another process wait, or read again, while it is).
void begin_in_place(H5File& f, const Committed& old, const Journal& journal, const std::string& what) {
  f.write_commit(old.generation + 1, old.rows, what);
  f.flush_and_sync(what);
  write_journal(f.path, journal, what);
}

// Writes /ids and /labels of `next`: the committed rows in `dirty` in place, the new rows past `old`'s count.
void write_rows(H5File& f, const Committed& old, Committed& next, const std::set<std::uint64_t>& dirty,
                const std::string& what) {
  const std::uint64_t total = next.rows;
  if (total > old.rows) {
    const hsize_t n[1] = {total};
    checked(H5Dset_extent(f.labels.get(), n), what);
    checked(H5Dset_extent(f.ids.get(), n), what);
  }
  for (const auto row : dirty) {
    f.transfer(f.ids.get(), true, row, 1, H5T_NATIVE_INT64, next.row_ids.data() + row, what);
    f.transfer(f.labels.get(), true, row, 1, H5T_NATIVE_INT64, next.row_labels.data() + row, what);
  }
  if (total > old.rows) {
    const std::uint64_t appended = total - old.rows;
    f.transfer(f.ids.get(), true, old.rows, appended, H5T_NATIVE_INT64, next.row_ids.data() + old.rows, what);
    f.transfer(f.labels.get(), true, old.rows, appended, H5T_NATIVE_INT64, next.row_labels.data() + old.rows, what);
  }
}

// Version 2: takes the writer lock, waiting up to `timeout`.
bool lock_writer(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  f.writer_lock = WriterLock(f.writer_spot(), timeout, f.where(table) + ": the writer lock");
  return static_cast<bool>(f.writer_lock);
}

void unlock_writer(H5File& f) noexcept { f.writer_lock.release(); }

// Version 2, opened read-only: a journal or an odd generation left by a writer that died is recovered now,
// if the writer lock is free (with a live writer both are normal: the seqlock read waits for its commit).
void recover_abandoned(H5File& f, const std::string& table) {
  const bool journal = ::access(journal_path(f.path).c_str(), F_OK) == 0;
  if (!journal && f.read_commit(f.where(table)).generation % 2 == 0) return;
  if (::access(f.path.c_str(), W_OK) != 0) return;  // a read-only store: readers wait, then SQLITE_BUSY
  if (!lock_writer(f, table, std::chrono::milliseconds(0))) return;
  try {
    f.close();
    open_handles(f, table, Access::swmr_write, f.shape);
    recover_v2(f, table);
    f.close();
    open_handles(f, table, Access::swmr_read, f.shape);
  } catch (...) {
    unlock_writer(f);
    throw;
  }
  unlock_writer(f);
}

// The file's length and the end its superblock records, when the file is shorter (HDF5 refuses to open it:
// "truncated file").
struct ShortFile {
  std::uint64_t size;
  std::uint64_t end;
};
std::optional<ShortFile> short_of_recorded_end(const std::string& path) {
  const auto end = read_superblock_head(path).end;
  std::error_code ec;
  const std::uint64_t size = std::filesystem::file_size(path, ec);
  if (!end || ec || size >= *end) return std::nullopt;
  return ShortFile{size, *end};
}

// A file shorter than the end its superblock records, its writer gone, is what a power loss after a commit
// that grew it can leave (issue 23: the space HDF5 had allocated at the end not yet on disk; the commit's data
// intact). An opener that may write the file, holding the writer lock (so no writer is at work, and checking
// again under it), extends it to that end; HDF5 must then read it as one of our stores, or it is cut back.
void restore_recorded_end(H5File& f, const std::string& table) {
  if (!short_of_recorded_end(f.path) || ::access(f.path.c_str(), W_OK) != 0) return;
  if (!lock_writer(f, table, std::chrono::milliseconds(0))) return;  // a live writer: readers wait for its end
  try {
    if (const auto cut = short_of_recorded_end(f.path)) {
      const std::string what = f.where(table) + ": extending the file to the end its superblock records (" +
                               std::to_string(cut->end) + " bytes)";
      const Fd fd = open_or_throw(f.path, O_RDWR | O_CLOEXEC, what);
      const auto cut_to = [&](std::uint64_t length) {
        if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
          throw Error(what + ": " + std::strerror(errno), errno == ENOSPC ? ErrorKind::full : ErrorKind::generic);
        }
      };
      cut_to(cut->end);
      try {
        open_handles(f, table, Access::probe, std::nullopt);
      } catch (const Error&) {
        f.close();
        cut_to(cut->size);
        throw;
      }
      const bool ours = f.version == 2;
      f.close();
      if (!ours) cut_to(cut->size);  // not ours to extend: HDF5's refusal stands
      fsync_or_throw(fd.get(), f.path, what);
    }
  } catch (...) {
    unlock_writer(f);
    throw;
  }
  unlock_writer(f);
}

// Opens an existing store: read-only, unless a journal says a commit was interrupted, which is rolled back
// first (as SQLite rolls back a hot journal, even for a reader), or a power loss cut the file short.
void open_existing_once(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                        std::chrono::milliseconds timeout) {
  if (mode != OpenMode::inspect) restore_recorded_end(f, table);
  open_reader(f, table, wanted);
  if (f.version == 2) {
    if (mode != OpenMode::inspect) recover_abandoned(f, table);
    load_committed(f, table, timeout);
    return;
  }
  if (mode == OpenMode::inspect) {  // as it is: check() reports a journal, imgstore_repair rolls it back
    load_committed(f, table);
    return;
  }
  const auto journal = read_journal(f.path, f.where(table));
  if (journal && *journal) {
    f.close();
    open_handles(f, table, Access::v1_write, wanted);
  }
  recover_journal(f, table, journal);
  load_committed(f, table);
}

// Runs `attempt` (which opens f) again while it fails busy (HDF5's lock held by another process, a commit
// being applied), closing the file after each failure, up to `timeout`: nullopt once it succeeds, else the
// last busy error. Any other error propagates.
template <typename Attempt>
std::optional<Error> retry_while_busy(H5File& f, std::chrono::milliseconds timeout, Attempt&& attempt) {
  std::optional<Error> busy;
  const bool done = wait_for([&] {
    try {
      attempt();
      return true;
    } catch (const Error& e) {
      f.close();
      if (e.kind() != ErrorKind::busy) throw;
      busy = e;
      return false;
    }
  }, timeout);
  if (done) return std::nullopt;
  return busy;
}

// While another process writes a version 1 file, HDF5's lock keeps readers out too: wait for it, up to `timeout`.
void open_existing(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                   std::chrono::milliseconds timeout) {
  const auto busy = retry_while_busy(f, timeout, [&] { open_existing_once(f, table, wanted, mode, timeout); });
  if (busy) {
    const std::string said = busy->what();
    if (said.find("; waited ") != std::string::npos) throw *busy;  // it says how long already
    throw Error(said + "; waited " + std::to_string(timeout.count()) + " ms, try again after it commits", ErrorKind::busy);
  }
}

std::optional<std::pair<std::int64_t, std::int64_t>> file_stamp(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::pair{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                   static_cast<std::int64_t>(st.st_size)};
}

// Opens the file for `access`, waiting up to `timeout` while another process holds HDF5's lock on it.
bool open_waiting(H5File& f, const std::string& table, Access access, std::chrono::milliseconds timeout) {
  return !retry_while_busy(f, timeout, [&] { open_handles(f, table, access, f.shape); });
}

Access read_access(const H5File& f) { return f.version == 2 ? Access::swmr_read : Access::v1_read; }

// Version 2: the writer lock (other writers wait for it, readers never), then the file for SWMR writing.
void make_writable_v2(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (!lock_writer(f, table, timeout)) throw_writer_busy(table, f.path, "another process", timeout);
  f.close();
  try {
    if (!open_waiting(f, table, Access::swmr_write, timeout)) {
      throw Error("table " + table + ": '" + f.path + "' is open in another process that locks the file (an HDF5 "
                  "reader without SWMR, e.g. h5py without swmr=True, locking=False); waited " +
                  std::to_string(timeout.count()) + " ms, try again when it has closed the file",
                  ErrorKind::busy);
    }
    recover_v2(f, table);
    load_committed(f, table, timeout);  // read again only if another process committed since
  } catch (const Error&) {
    f.close();
    unlock_writer(f);
    open_handles(f, table, Access::swmr_read, f.shape);  // keep serving reads
    throw;
  }
}

}  // namespace

// A process forked in the middle of a transaction on the file holds that writer's handles: it may read the
// store but never write it (H5File::opener).
void refuse_inherited(const H5File& f, const std::string& table) {
  // Before this process claims `writing`: set already, it is the parent's (a transaction not yet writing).
  if (!f.inherited_writer() && (f.opener.is_this_process() || !f.writing)) return;
  throw Error(f.where(table) + " was being written by process " + std::to_string(f.opener.pid()) +
                  " when it forked this process (" + std::to_string(::getpid()) + "); HDF5's handles of that "
                  "transaction cannot be written or closed here (closing them would flush its unfinished state), so "
                  "this process may read the store but not write it: fork outside a transaction, or start the worker "
                  "processes with 'spawn'",
              ErrorKind::readonly);
}

void commit_transaction(H5File& f, std::shared_ptr<Committed> next, const std::set<std::uint64_t>& dirty,
                        const std::string& what) {
  const Committed& old = *f.committed;
  Journal journal{old.rows, {}};
  for (const auto row : dirty) journal.entries.push_back({row, old.row_ids[row], old.row_labels[row]});
  if (!journal.entries.empty()) begin_in_place(f, old, journal, what);
  write_rows(f, old, *next, dirty, what);
  // The new rows reach the disk first; then the committed row count (/commit), flushed and synced; then, if
  // the commit changed committed rows, the journal goes.
  f.flush_and_sync(what);
  // The commit point: the even generation with the new row count, which readers poll.
  next->generation = old.generation + 2;
  f.write_commit(next->generation, next->rows, what);
  f.flush_and_sync(what);
  if (!journal.entries.empty()) remove_journal(f.path, what);
  next->images_end = images_end(f, next->rows);
  f.committed = std::move(next);
}

// Reopens the file read-write for a transaction's first write, and trims rows an unfinished transaction left.
// Between closing and reopening, another process may have written (or crashed writing): so its journal is
// rolled back and the committed state read again, as at open.
void make_writable(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.writable) return;
  require_writable(table, f.path);
  const std::string dir = std::filesystem::path(f.path).parent_path().string();
  require_writable(table, dir.empty() ? "." : dir);  // the journal is made beside the file
  if (f.version != 2) {
    // Fewer states: version 1 (and files made by other tools) had their own commit protocol under HDF5's
    // whole-file lock. They are read as they are; a copy is a version 2 store.
    throw Error("table " + table + ": '" + f.path + "' is an hdf5 store of format version 1 (or an HDF5 file made by "
                "another tool), which imgstore reads but no longer writes; copy it into a new store to write: "
                "CREATE VIRTUAL TABLE t2 USING hdf5(path='new.h5'); INSERT INTO t2 SELECT * FROM " + table,
                ErrorKind::readonly);
  }
  make_writable_v2(f, table, timeout);
  const std::string what = f.where(table) + ": trimming rows of an unfinished transaction";
  const std::uint64_t rows = f.committed->rows;
  if (f.extent(f.images.get(), what) > rows || f.extent(f.labels.get(), what) > rows ||
      f.extent(f.ids.get(), what) > rows) {
    f.set_rows(rows, what);
  }
}

void make_readonly(H5File& f, const std::string& table) noexcept {
  if (!f.writable || f.inherited_writer()) return;  // an inherited writer's handles stay as they are
  f.close();
  unlock_writer(f);
  f.left_as = file_stamp(f.path);
  try {
    open_handles(f, table, read_access(f), f.shape);
  } catch (...) {
    f.close();  // another process was quicker: ensure_open reopens it when this process reads again
  }
}

void ensure_open(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.file) return;
  if (!open_waiting(f, table, read_access(f), timeout)) {
    throw Error("table " + table + ": '" + f.path + "' is being written by another process (HDF5 locks the whole file); "
                "waited " + std::to_string(timeout.count()) + " ms, try again after it commits",
                ErrorKind::busy);
  }
}

void refresh_committed(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.version != 2 || f.writing || f.writable) return;
  ensure_open(f, table, timeout);
  load_committed(f, table, timeout);
}

bool writer_active(const H5File& f) {
  try {
    return !WriterLock(f.writer_spot(), std::chrono::milliseconds(0), f.path);
  } catch (const Error&) {
    return false;  // a file this process cannot open for writing has no writer of ours to wait for
  }
}

std::shared_ptr<H5File> open_file(const std::string& table, const std::string& path, const std::optional<Shape>& wanted,
                                  const Compression& compression, std::uint64_t chunk, OpenMode mode,
                                  std::chrono::milliseconds timeout) {
  auto& reg = registry();
  const std::lock_guard reg_lock(reg.mutex());
  const Lock lock(hdf5_mutex());
  silence_hdf5();
  struct stat st{};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    throw Error("table " + table + ": path '" + path + "' is a directory; expected an HDF5 file", ErrorKind::cantopen);
  }
  if (exists) {
    if (auto f = reg.find(st)) {
      if (wanted && *wanted != f->shape) {
        throw shape_mismatch(table, *wanted, path, f->shape);
      }
      return f;
    }
  }
  const bool fresh = !exists || st.st_size == 0;
  if (fresh && (!wanted || mode != OpenMode::create_if_missing)) throw_missing_store(table, path, mode);
  auto f = std::make_shared<H5File>();
  f->path = path;
  if (fresh) {
    f->shape = *wanted;
    f->chunk_rows = chunk > 0 ? chunk : default_chunk_rows(f->shape.bytes());
    // The latest file format (superblock 3, new chunk indexes): what SWMR needs (hdf5_format.hpp).
    const Hid fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
    checked(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
    f->file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose,
                      "table " + table + ": cannot create '" + path + "'");
    f->writable = true;
    create_layout(*f, table, compression, f->chunk_rows);
    // Made; now a reader like any other (SWMR readers cannot open a file open for plain writing).
    make_readonly(*f, table);
    ensure_open(*f, table, timeout);
    load_committed(*f, table, timeout);
  } else {
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw Error("table " + table + ": '" + path + "' is not an HDF5 file", ErrorKind::cantopen);
    }
    open_existing(*f, table, wanted, mode, timeout);
  }
  reg.add(path, table, f);
  return f;
}

}  // namespace imgstore::hdf5
