// H5File's recovery (hdf5_file.hpp): commits a crash interrupted (the journal of hdf5_journal.hpp, /commit's
// odd generation), a writer that died mid-commit, and a file a power loss cut short of its recorded end.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "hdf5_file.hpp"
#include "hdf5_open.hpp"

namespace imgstore::hdf5 {

// Both versions: the journal's old /ids and /labels values written back, the datasets cut to its row count.
void H5File::undo_in_place(const Journal& journal, const std::string& what) {
  for (const auto& e : journal.entries) {
    std::int64_t id = e.id;
    std::int64_t label = e.label;
    transfer(Dataset::ids, true, e.row, 1, &id, what);
    transfer(Dataset::labels, true, e.row, 1, &label, what);
    if (journal.checksums && checksummed()) {
      std::uint64_t checksum = e.checksum;
      transfer(Dataset::checksums, true, e.row, 1, &checksum, what);
    }
  }
  set_rows(journal.rows, what);
}

// Version 1: rolls back a commit that a crash interrupted after it began changing committed rows in place.
// The file must be open read-write.
void H5File::roll_back_journal(const std::string& table, const Journal& journal) {
  const std::string what = where(table) + ": rolling back an interrupted commit (" + journal_path(path_) + ")";
  undo_in_place(journal, what);
  const Hid attr = checked(H5Aopen(file_.get(), kRowsAttribute, H5P_DEFAULT), H5Aclose, what);
  const std::uint64_t rows = journal.rows;
  checked(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &rows), what);
  flush_and_sync(what);
  remove_journal(path_, what);
}

// Deals with the journal found beside the file, if any: a complete one is rolled back (the file must be open
// read-write); an incomplete one was never acted on (nothing changed in place before it was synced): removed.
void H5File::recover_journal(const std::string& table, const std::optional<std::optional<Journal>>& journal) {
  if (swmr()) {
    recover_v2(table);
    return;
  }
  if (!journal) return;
  if (*journal) {
    roll_back_journal(table, **journal);
  } else {
    remove_journal(path_, where(table));
  }
}

// Version 2 (the file open for SWMR writing, the writer lock held). A commit that changes rows in place makes
// /commit's generation odd (synced) before it writes its journal, and even again, with the new row count, as
// its commit point; then it removes the journal. So after a crash: a complete journal with an odd generation
// is rolled back; with an even one the commit had finished and the journal is only removed; an odd generation
// without a complete journal changed nothing in place yet. Either way the generation ends even and new.
// Returns the committed row count /commit then holds.
std::uint64_t H5File::recover_v2(const std::string& table) {
  const std::string what = where(table) + ": recovering from an interrupted commit";
  const auto journal = read_journal(path_, where(table));
  const auto [generation, rows] = read_commit(what);
  std::uint64_t committed_rows = rows;
  if (generation % 2 == 1) {
    if (journal && *journal) {
      undo_in_place(**journal, what);
      committed_rows = (*journal)->rows;
      flush_and_sync(what);
    }
    write_commit(generation + 1, committed_rows, what);
    flush_and_sync(what);
  }
  if (journal) remove_journal(path_, what);
  return committed_rows;
}

// Version 2, opened read-only: a journal or an odd generation left by a writer that died is recovered now,
// if the writer lock is free (with a live writer both are normal: the seqlock read waits for its commit).
void H5File::recover_abandoned(const std::string& table) {
  const bool journal = ::access(journal_path(path_).c_str(), F_OK) == 0;
  if (!journal && read_commit(where(table)).generation % 2 == 0) return;
  if (::access(path_.c_str(), W_OK) != 0) return;  // a read-only store: readers wait, then SQLITE_BUSY
  const WriterLock lock(writer_spot(), std::chrono::milliseconds(0), where(table) + ": the writer lock");
  if (!lock || replaced()) return;  // (the journal beside the path is the new file's, after a compaction)
  try {
    open_handles(table, Access::swmr_write, shape_);
    recover_v2(table);
    open_handles(table, Access::swmr_read, shape_);
  } catch (...) {
    close();  // never left read-write outside the writer lock
    throw;
  }
}

namespace {

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

}  // namespace

// A file shorter than the end its superblock records, its writer gone, is what a power loss after a commit
// that grew it can leave (issue 23: the space HDF5 had allocated at the end not yet on disk; the commit's data
// intact). An opener that may write the file, holding the writer lock (so no writer is at work, and checking
// again under it), extends it to that end; HDF5 must then read it as one of our stores, or it is cut back.
void H5File::restore_recorded_end(const std::string& table) {
  if (!short_of_recorded_end(path_) || ::access(path_.c_str(), W_OK) != 0) return;
  const WriterLock lock(writer_spot(), std::chrono::milliseconds(0), where(table) + ": the writer lock");
  if (!lock || replaced()) return;  // a live writer: readers wait for its end
  if (const auto cut = short_of_recorded_end(path_)) {
    const std::string what = where(table) + ": extending the file to the end its superblock records (" +
                             std::to_string(cut->end) + " bytes)";
    const Fd fd = open_or_throw(path_, O_RDWR | O_CLOEXEC, what);
    const auto cut_to = [&](std::uint64_t length) {
      if (::ftruncate(fd.get(), static_cast<off_t>(length)) != 0) {
        throw Error(what + ": " + std::strerror(errno), errno == ENOSPC ? ErrorKind::full : ErrorKind::generic);
      }
    };
    cut_to(cut->end);
    try {
      open_handles(table, Access::probe, std::nullopt);
    } catch (const Error&) {
      cut_to(cut->size);
      throw;
    }
    const bool ours = swmr();
    close();
    if (!ours) cut_to(cut->size);  // not ours to extend: HDF5's refusal stands
    fsync_or_throw(fd.get(), path_, what);
  }
}

}  // namespace imgstore::hdf5
