// png_dir's commit protocol and recovery (on disk: png_dir_format.hpp).
//
// A commit flushes the new and pending files (syncfs), writes labels.csv.pending and COMMIT (fsync, rename,
// fsync the directory), then rolls forward: the files it replaces or deletes kept in .old/<k> for the
// statements reading (png_versions.hpp), renames, deletes, labels.csv and the generation k (under the
// exclusive lock), then syncs them and removes COMMIT and .pending (after it: readers do not wait for the
// syncs), and the old files no statement needs any more. Opening a store (or beginning a transaction, if
// .pending is there) rolls forward a COMMIT left by a crash, and otherwise removes an unfinished transaction's
// files: .pending, and the <id>.png files .pending/new names that labels.csv does not list. So a crash leaves
// either the old or the new state, and the cost of finding leftovers is paid only when there are some. A
// transaction that only inserts new ids appends to labels.csv instead of rewriting it.
//
// One writer at a time (flock on the directory; a second gets SQLITE_BUSY after 5 s). A commit never waits for
// the statements reading: they hold their generation, not the reader lock, and read the files of their
// generation from .old. A commit that replaces or deletes images applies its record under the exclusive lock
// on .imgstore, which waits only for statements starting (a moment: they read labels.csv and the generation
// under the shared lock) and for readers of other tools holding it as docs/formats.md describes (at most
// `timeout`, then SQLITE_BUSY with nothing committed: the record is withdrawn). While its record is there,
// the writer holds the record lock (png_dir_locks.hpp) so that statements starting read the old state instead
// of waiting for it. A commit of new ids only does not take the exclusive lock: it renames nothing over a file
// and deletes none, and a statement that begins while its record is there reads labels.csv up to the record's
// append point. If applying a durable commit record fails (a rename refused), the commit stands: the record
// and its files stay, every later statement first retries it and fails with the cause until it succeeds, and
// the next open finishes it.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "png_dir_locks.hpp"
#include "png_store_impl.hpp"
#include "png_versions.hpp"

namespace imgstore::png_dir {

namespace {

namespace fs = std::filesystem;

}  // namespace

std::string PngStore::pending_name(std::int64_t id, std::uint64_t seq) const {
  return pending_dir() + "/" + png_dir_format::pending_name(id, seq);
}

bool PngStore::commit_pending() const { return ::access(commit_path().c_str(), F_OK) == 0; }

void PngStore::end_txn() {
  window_.clear();
  undo_.end();
  undo_size_ = 0;
  pending_.clear();
  inserted_.clear();
  deleted_.clear();
  direct_.clear();
  full_rewrite_ = false;
  journal_ = Fd();
  try {
    remove_pending_files();
  } catch (const std::exception&) {
    // Left for recovery (.pending stays): the transaction has ended either way.
  }
  lock_.release();
}

void PngStore::remove_pending_files() {
  if (commit_pending()) return;
  std::error_code ec;
  if (fs::exists(journal_path(), ec)) {
    // New ids written by a transaction that did not commit (a rollback has removed its own already).
    std::vector<std::uint8_t> raw;
    const std::string where = "table " + table_ + ": removing an unfinished transaction's files";
    read_whole(journal_path(), raw, where);
    const auto written = png_dir_format::parse_journal(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
    std::vector<std::uint8_t> csv;
    read_whole(csv_path(), csv, where);
    const auto listed = png_dir_format::parse_labels_csv(std::string_view(reinterpret_cast<const char*>(csv.data()), csv.size()),
                                                         where + ": '" + csv_path() + "'");
    for (const auto id : written) {
      if (!listed.contains(id)) fs::remove(dir_ + "/" + png_dir_format::image_name(id), ec);
    }
  }
  fs::remove_all(pending_dir(), ec);
  fs::remove(csv_path() + ".pending", ec);
  fs::remove(commit_path() + ".tmp", ec);
}

void PngStore::lock_writer() {
  require_writable(table_, dir_);
  WriterLock lock(writer_spot(), timeout_, "table " + table_);
  if (!lock) throw_writer_busy(table_, dir_, "another connection or process", timeout_);
  lock_ = std::move(lock);
}

void PngStore::make_pending_dir() {
  // Left by a transaction that did not finish while we had the store open: clean it up first.
  if (::access(pending_dir().c_str(), F_OK) == 0) remove_pending_files();
  std::error_code ec;
  fs::create_directory(pending_dir(), ec);
  if (ec) throw Error("table " + table_ + ": cannot create '" + pending_dir() + "': " + ec.message());
}

void PngStore::commit_changes() {
  const std::string where = "table " + table_ + ": commit";
  // 1. The pending PNGs reach the disk before anything refers to them (the caller's syncfs did, for shards).
  if (!files_synced_ && ::syncfs(lock_.fd()) != 0) throw_errno(where + ": syncfs of '" + dir_ + "'", errno);
  // 2. The new labels: the lines to append, or the whole file.
  png_dir_format::CommitRecord record;
  std::string csv;
  if (full_rewrite_) {
    csv = png_dir_format::labels_csv(labels_);
    record.replace_csv = true;
  } else {
    std::vector<std::pair<std::int64_t, std::int64_t>> rows;
    for (const auto id : inserted_) rows.emplace_back(id, labels_.at(id));
    csv = png_dir_format::labels_csv_lines(rows);
    record.append_at = stamp_of(csv_path()).size;
  }
  write_synced(csv_path() + ".pending", csv, where);
  record.renames.assign(pending_.begin(), pending_.end());
  record.deletes.assign(deleted_.begin(), deleted_.end());
  for (const auto id : direct_) {
    if (!labels_.contains(id)) record.deletes.push_back(id);  // written, then deleted, in this transaction
  }
  // A record that replaces or unlinks files statements may be reading makes a new generation, which keeps them.
  if (!record.renames.empty() || !record.deletes.empty()) {
    const std::uint64_t now = read_generation(dir_, where);
    if (now >= png_dir_format::kMostGenerations) throw Error(where + ": '" + dir_ + "' has made its last generation", ErrorKind::full);
    record.generation = now + 1;
  }
  write_synced(commit_path() + ".tmp", png_dir_format::encode_commit_record(record), where);
  commit_record(png_dir_format::appends_only(record));
}

void PngStore::commit_record(bool appends_only) {
  const std::string where = "table " + table_ + ": commit";
  // 3. The commit point: COMMIT appears atomically, and the directory entry is made durable. Readers that see
  // it while we hold the record lock read on (the state is still the old one), instead of finishing it.
  // Prepared (a sharded commit): the applying lock is held already, and stays held after this commit.
  const Fd own = prepared_ ? Fd() : open_or_throw(meta_path(), O_RDWR, where);
  const int exclusive = prepared_ ? prepared_.get() : own.get();
  const RecordHold record_lock(exclusive, where);
  if (::rename((commit_path() + ".tmp").c_str(), commit_path().c_str()) != 0) {
    throw_errno(where + ": cannot rename the commit record in '" + dir_ + "'", errno);
  }
  fsync_or_throw(lock_.fd(), dir_, where);
  // 4. Wait for the statements starting (and readers of other tools) to let go of the reader lock. If one keeps
  // it too long, the record is withdrawn (durably: a crash must not bring back what was refused). A record of
  // new ids only does not wait: it changes no file a reader reads, and readers read labels.csv up to its
  // append point while it is there.
  const bool applying = !appends_only && !prepared_;
  if (applying && !lock_for_applying(exclusive, timeout_)) {
    if (::unlink(commit_path().c_str()) != 0) {
      return;  // it stands: the next statement (or open) applies it, as after a failed apply
    }
    fsync_or_throw(lock_.fd(), dir_, where + ": withdrawing the commit record");
    throw readers_busy();
  }
  // 5. Apply it: readers wait only for the renames, deletes and labels.csv, not for the syncs and removals
  // after (tidy_up: the record stays until they are done, and the record lock says it is applied). The
  // transaction is committed: a failure leaves the record for the next statement or open.
  try {
    const auto record = read_record();
    apply_record(record, exclusive);
    if (record.generation) labels_gen_ = *record.generation;
  } catch (const std::exception&) {
    // Deliberately not reported here: SQLite would roll back a transaction that is already durable. Readers
    // must not read the half-applied state: the record lock goes (on return), then every later statement
    // retries and reports it (finish_commit).
    return;
  }
  csv_stamp_ = stamp_of(csv_path());
  if (applying) unlock_applying(exclusive);
  try {
    tidy_up();
  } catch (const std::exception&) {
    // Applied already; the record is applied again (idempotent) and removed by the next statement or open.
  }
}

bool PngStore::replaces_files() const {
  if (full_rewrite_ || !pending_.empty() || !deleted_.empty()) return true;
  // Written and deleted again in this transaction: the record deletes the file (commit_changes).
  return std::any_of(direct_.begin(), direct_.end(), [&](std::int64_t id) { return !labels_.contains(id); });
}

Error PngStore::readers_busy() const {
  return Error("table " + table_ + ": cannot commit to '" + dir_ + "': a reader has held its reader lock ('" +
                   meta_path() + "', byte 1: another program reading as docs/formats.md describes, or a statement "
                   "that began on the store as version 1) for " + std::to_string(timeout_.count()) +
                   " ms; nothing was committed, try COMMIT again",
               ErrorKind::busy);
}

Fd PngStore::open_applying(const std::string& where) const {
  Fd fd = open_or_throw(meta_path(), O_RDWR, where);
  if (!lock_for_applying(fd.get(), timeout_)) return Fd();
  return fd;
}

void PngStore::prepare_commit() {
  if (!undo_.active() || prepared_ || !replaces_files()) return;
  prepared_ = open_applying("table " + table_ + ": commit");
  if (!prepared_) throw readers_busy();
}

void PngStore::release_prepared() noexcept { prepared_ = Fd(); }

void PngStore::finish_commit() {
  if (!commit_pending()) return;
  const std::string where = "table " + table_ + ": '" + dir_ + "' holds a committed transaction not yet applied";
  const Fd own = prepared_ ? Fd() : open_applying(where);
  if (!prepared_ && !own) throw Error(where + ", and other statements are reading it; try again", ErrorKind::busy);
  try {
    roll_forward(prepared_ ? prepared_.get() : own.get());
  } catch (const Error& e) {
    throw Error(where + ": " + e.what() + "; fix the cause, and the next statement finishes it", e.kind());
  }
  if (open_cursors_ == 0) {
    load_csv();
  } else {
    csv_stamp_ = Stamp{};  // read once the open cursors end
  }
}

png_dir_format::CommitRecord PngStore::read_record() const {
  const std::string where = "table " + table_ + ": reading the commit record of '" + dir_ + "'";
  std::vector<std::uint8_t> raw;
  read_whole(commit_path(), raw, where);
  return png_dir_format::parse_commit_record(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                             where);
}

void PngStore::apply_record(const png_dir_format::CommitRecord& record, int meta) {
  const std::string where = "table " + table_ + ": applying the commit record of '" + dir_ + "'";
  keep_old(dir_, record, meta, where);  // first: statements reading find every file they may need
  for (const auto& [id, seq] : record.renames) {
    const std::string from = pending_name(id, seq);
    const std::string to = dir_ + "/" + png_dir_format::image_name(id);
    if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) throw_errno(where + ": rename to '" + to + "'", errno);
  }
  for (const auto id : record.deletes) {
    const std::string path = dir_ + "/" + png_dir_format::image_name(id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno(where + ": unlink '" + path + "'", errno);
  }
  const std::string pending_csv = csv_path() + ".pending";
  if (record.replace_csv) {
    if (::rename(pending_csv.c_str(), csv_path().c_str()) != 0 && errno != ENOENT) {
      throw_errno(where + ": rename to '" + csv_path() + "'", errno);
    }
  } else if (fs::exists(pending_csv)) {
    std::vector<std::uint8_t> lines;
    read_whole(pending_csv, lines, where);
    const Fd fd = open_or_throw(csv_path(), O_WRONLY, where);
    const auto at = static_cast<off_t>(record.append_at);
    if (::ftruncate(fd.get(), at) != 0) throw_errno(where + ": truncate '" + csv_path() + "'", errno);
    if (::lseek(fd.get(), at, SEEK_SET) < 0) throw_errno(where + ": seek '" + csv_path() + "'", errno);
    write_all(fd.get(), lines, csv_path(), where);
  }
  // Last: statements starting from now read the new state, and no longer look in .old/<k>.
  if (record.generation) write_generation(dir_, *record.generation, where);
}

void PngStore::tidy_up() {
  const std::string where = "table " + table_ + ": removing the applied commit record of '" + dir_ + "'";
  // Everything the record did is durable before the record goes: labels.csv's appended lines, then the
  // renames and unlinks (the directory), and the generation.
  fsync_or_throw(open_or_throw(csv_path(), O_RDONLY, where).get(), csv_path(), where);
  const Fd dir = open_or_throw(dir_, O_RDONLY | O_DIRECTORY, where);
  fsync_or_throw(dir.get(), dir_, where);
  sync_old(dir_, where);
  if (::unlink(commit_path().c_str()) != 0 && errno != ENOENT) throw_errno(where + ": unlink COMMIT", errno);
  std::error_code ec;
  fs::remove(csv_path() + ".pending", ec);
  fs::remove_all(pending_dir(), ec);
  fsync_or_throw(dir.get(), dir_, where);
  prune_old_files();
}

void PngStore::prune_old_files() {
  // Old files no statement reads any more (those that began before their commit and still read keep theirs).
  if (const Fd meta(::open(meta_path().c_str(), O_RDONLY | O_CLOEXEC)); meta) prune_old(dir_, meta.get());
}

void PngStore::roll_forward(int meta) {
  apply_record(read_record(), meta);
  tidy_up();
}

void PngStore::recover() {
  const WriterLock lock(writer_spot(), std::chrono::milliseconds(0), "table " + table_);
  if (!lock) return;  // a live writer: its transaction, not a crash's leftovers
  finish_commit();
  remove_pending_files();
  if (const Fd meta(::open(meta_path().c_str(), O_RDONLY | O_CLOEXEC)); meta) {
    settle_generation(dir_, meta.get(), "table " + table_ + ": rebuilding '" + dir_ + "/.old/generation'");
  }
}

}  // namespace imgstore::png_dir
