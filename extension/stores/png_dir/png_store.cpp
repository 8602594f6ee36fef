// png_dir backend.
//
// On disk: png_dir_format.hpp (the files, labels.csv, the commit record).
// A commit flushes the pending files (syncfs), writes labels.csv.pending and COMMIT (fsync, rename, fsync
// the directory), then rolls forward: renames, deletes, labels.csv, removes COMMIT. Opening a store rolls
// forward a COMMIT left by a crash, and otherwise removes pending leftovers, so a crash leaves either the old
// or the new state. A transaction that only inserts new ids appends to labels.csv instead of rewriting it.
//
// One writer at a time (flock on the directory; a second gets SQLITE_BUSY after 5 s). Isolation: a statement
// that reads holds a shared flock on .imgstore for as long as it reads (its cursor's life), and a commit
// writes its record and applies it under the exclusive flock, so a statement sees labels.csv and the PNG
// files of one committed state, never a commit halfway. Readers reload labels.csv when it changes. A commit
// waits for the statements reading (at most 5 s, then SQLITE_BUSY with nothing committed). If applying a
// durable commit record fails (a rename refused), the commit stands: the record and its files stay, every
// later statement first retries it and fails with the cause until it succeeds, and the next open finishes it.
// A directory made by other tools (PNGs and labels.csv only) is read as it is; .imgstore is written by the
// first transaction that writes.

#include "png_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "args.hpp"
#include "busy.hpp"
#include "png_codec.hpp"
#include "png_dir_format.hpp"
#include "png_dir_locks.hpp"
#include "undo_log.hpp"
#include "posix_file.hpp"

namespace imgstore {

namespace {

namespace fs = std::filesystem;

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// "'path' <text>", built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + std::string + ... chains.
std::string about(const std::string& path, std::string_view text) {
  std::string out = "'";
  out.append(path).append("' ").append(text);
  return out;
}

// Identity of labels.csv as last read, to notice commits by other connections and processes.
struct Stamp {
  ino_t inode = 0;
  off_t size = -1;
  std::int64_t mtime_ns = 0;
  friend bool operator==(const Stamp&, const Stamp&) = default;
};

Stamp stamp_of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_ino, st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

using namespace png_dir;  // the locks

class PngStore;


class PngCursor final : public Cursor {
 public:
  PngCursor(PngStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids, Fd read_lock);
  bool at_end() const override { return at_end_; }
  void next() override;
  std::int64_t id() const override { return walk_.id(); }
  std::int64_t label() override { return walk_.value(); }
  std::span<const std::uint8_t> pixels() override;

 private:
  PngStore& store_;
  const Fd read_lock_;         // shared flock on .imgstore while the statement reads (empty in a transaction)
  IdWalk<std::int64_t> walk_;  // id -> label
  bool at_end_ = false;
  std::vector<std::uint8_t> file_bytes_;  // reused across rows
  std::vector<std::uint8_t> pixels_;
  bool decoded_ = false;
};

class PngStore final : public Store {
 public:
  PngStore(std::string table, std::string dir, std::optional<Shape> wanted, int level, OpenMode mode)
      : table_(std::move(table)), dir_(std::move(dir)), level_(level), inspect_(mode == OpenMode::inspect) {
    open(wanted, mode);
  }

  ~PngStore() override {
    if (undo_.active()) {
      try {
        rollback();
      } catch (...) {
      }
    }
  }

  const Shape& shape() const override { return shape_; }
  const std::string& table() const { return table_; }

  std::uint64_t count() override {
    const Fd lock = read_state();
    return labels_.size();
  }
  std::optional<std::int64_t> max_id() override {
    const Fd lock = read_state();
    if (labels_.empty()) return std::nullopt;
    return labels_.rbegin()->first;
  }

  std::unique_ptr<Cursor> scan(IdRange range) override {
    Fd lock = read_state();
    return std::make_unique<PngCursor>(*this, range, std::vector<std::int64_t>{}, false, std::move(lock));
  }
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override {
    Fd lock = read_state();
    return std::make_unique<PngCursor>(*this, IdRange{}, std::move(ids), true, std::move(lock));
  }

  // The first row with id >= from, or nullopt.
  std::optional<std::pair<std::int64_t, std::int64_t>> row_from(std::int64_t from) const {
    const auto it = labels_.lower_bound(from);
    if (it == labels_.end()) return std::nullopt;
    return *it;
  }
  std::optional<std::int64_t> label_of(std::int64_t id) const {
    const auto it = labels_.find(id);
    if (it == labels_.end()) return std::nullopt;
    return it->second;
  }
  std::string file_of(std::int64_t id) const {
    const auto it = pending_.find(id);
    if (it != pending_.end()) return pending_name(id, it->second);
    return dir_ + "/" + png_dir_format::image_name(id);
  }

  void put(const Image& image, bool replace) override {
    undo_.require_active(table_, "INSERT");
    const bool exists = labels_.contains(image.id);
    if (exists && !replace) {
      throw Error("table " + table_ + ": id " + std::to_string(image.id) +
                      " already exists; expected a unique id (INSERT OR REPLACE overwrites)",
                  ErrorKind::constraint);
    }
    const std::uint64_t seq = ++seq_;
    png_encode(image.pixels, shape_, level_, encoded_, "table " + table_ + ": id " + std::to_string(image.id));
    const std::string path = pending_name(image.id, seq);
    {
      const Fd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC, "table " + table_);
      write_all(fd.get(), encoded_, path, "table " + table_);
    }
    remember(image.id);
    labels_[image.id] = image.label;
    pending_[image.id] = seq;
    deleted_.erase(image.id);
    if (exists && !inserted_.contains(image.id)) {
      full_rewrite_ = true;  // a committed row is replaced
    } else {
      inserted_.insert(image.id);
    }
  }

  bool set_label(std::int64_t id, std::int64_t label) override {
    undo_.require_active(table_, "UPDATE");
    const auto it = labels_.find(id);
    if (it == labels_.end()) return false;
    remember(id);
    it->second = label;
    if (!inserted_.contains(id)) full_rewrite_ = true;
    return true;
  }

  bool erase(std::int64_t id) override {
    undo_.require_active(table_, "DELETE");
    if (!labels_.contains(id)) return false;
    remember(id);
    labels_.erase(id);
    pending_.erase(id);
    if (inserted_.erase(id) == 0) {
      deleted_.insert(id);
      full_rewrite_ = true;
    }
    return true;
  }

  std::vector<std::string> check(bool full) override {
    const Fd lock = read_state();
    std::vector<std::string> problems;
    if (commit_pending()) {
      problems.push_back(about(commit_path(), "holds a committed transaction not yet applied; imgstore_repair() finishes it"));
    } else if (::access(pending_dir().c_str(), F_OK) == 0 && !undo_.active()) {
      problems.push_back(about(pending_dir(), "is left by a transaction that did not commit; imgstore_repair() removes it"));
    }
    std::set<std::string> listed;
    std::vector<std::uint8_t> raw;
    std::vector<std::uint8_t> pixels;
    for (const auto& [id, label] : labels_) {
      const std::string path = file_of(id);
      listed.insert(fs::path(path).filename().string());
      if (!fs::exists(path)) {
        problems.push_back(about(path, "is missing; labels.csv lists id " + std::to_string(id)));
        continue;
      }
      if (!full) continue;
      try {
        read_whole(path, raw, "table " + table_);
        const Shape found = png_decode(raw, pixels, "'" + path + "'");
        if (found != shape_) problems.push_back(about(path, "is a " + found.str() + " image; expected " + shape_.str()));
      } catch (const Error& e) {
        problems.push_back(e.what());
      }
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.ends_with(".png") && !listed.contains(name)) {
        problems.push_back(about(entry.path().string(), "is not listed in labels.csv (not part of the store)"));
      }
    }
    return problems;
  }

  void begin() override {
    if (undo_.active()) return;
    lock_writer();
    try {
      finish_commit();
      refresh(true);  // another writer may have committed since we last looked
      ensure_meta();
    } catch (...) {
      lock_ = Fd();
      throw;
    }
    undo_.begin();
    seq_ = 0;
  }

  void sync() override {
    if (!undo_.active()) return;
    if (!undo_.empty()) commit_changes();
    end_txn();
  }

  void rollback() override {
    if (!undo_.active()) return;
    undo_.rollback_all([&](const Undo& u) { undo_one(u); });
    end_txn();
  }

  void savepoint(int level) override { undo_.savepoint(level); }
  void release(int level) override { undo_.release(level); }
  void rollback_to(int level) override {
    undo_.rollback_to(level, [&](const Undo& u) { undo_one(u); });
  }

 private:
  struct Undo {
    std::int64_t id;
    std::optional<std::int64_t> label;
    std::optional<std::uint64_t> pending;
    bool inserted;
    bool deleted;
    bool full_rewrite;
  };

  std::string pending_dir() const { return dir_ + "/" + png_dir_format::pending_dir; }
  std::string pending_name(std::int64_t id, std::uint64_t seq) const {
    return pending_dir() + "/" + png_dir_format::pending_name(id, seq);
  }
  std::string csv_path() const { return dir_ + "/" + png_dir_format::labels_file; }

  std::string meta_path() const { return dir_ + "/" + png_dir_format::meta_file; }
  std::string commit_path() const { return dir_ + "/" + png_dir_format::commit_file; }
  // A durable commit record not yet applied (a crash, or an apply that failed).
  bool commit_pending() const { return ::access(commit_path().c_str(), F_OK) == 0; }

  void remember(std::int64_t id) {
    const auto label = labels_.find(id);
    const auto pending = pending_.find(id);
    undo_.push(Undo{id, label == labels_.end() ? std::nullopt : std::optional(label->second),
                         pending == pending_.end() ? std::nullopt : std::optional(pending->second),
                         inserted_.contains(id), deleted_.contains(id), full_rewrite_});
  }

  void undo_one(const Undo& u) {
    if (u.label) {
      labels_[u.id] = *u.label;
    } else {
      labels_.erase(u.id);
    }
    if (u.pending) {
      pending_[u.id] = *u.pending;
    } else {
      pending_.erase(u.id);
    }
    if (u.inserted) {
      inserted_.insert(u.id);
    } else {
      inserted_.erase(u.id);
    }
    if (u.deleted) {
      deleted_.insert(u.id);
    } else {
      deleted_.erase(u.id);
    }
    full_rewrite_ = u.full_rewrite;
  }

  void end_txn() {
    undo_.end();
    pending_.clear();
    inserted_.clear();
    deleted_.clear();
    full_rewrite_ = false;
    remove_pending_files();
    lock_ = Fd();  // closing the descriptor releases the flock
  }

  // Removes an unfinished transaction's files; never those of a commit record waiting to be applied.
  void remove_pending_files() {
    if (commit_pending()) return;
    std::error_code ec;
    fs::remove_all(pending_dir(), ec);
    fs::remove(csv_path() + ".pending", ec);
    fs::remove(commit_path() + ".tmp", ec);
  }

  void lock_writer() {
    Fd fd = open_or_throw(dir_, O_RDONLY | O_DIRECTORY, "table " + table_);
    if (!wait_for_flock(fd.get(), LOCK_EX, kLockTimeout)) throw_writer_busy(table_, dir_, "another connection");
    lock_ = std::move(fd);
    std::error_code ec;
    fs::create_directory(pending_dir(), ec);
    if (ec) throw Error("table " + table_ + ": cannot create '" + pending_dir() + "': " + ec.message());
  }

  // Writes labels.csv.pending and the commit record, then applies it.
  void commit_changes() {
    const std::string where = "table " + table_ + ": commit";
    // 1. The pending PNGs reach the disk before anything refers to them.
    if (::syncfs(lock_.get()) != 0) throw_errno(where + ": syncfs of '" + dir_ + "'", errno);
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
    write_synced(commit_path() + ".tmp", png_dir_format::encode_commit_record(record), where);
    // 3. Wait for the statements reading the committed state to finish (they hold .imgstore shared).
    const Fd exclusive = open_or_throw(meta_path(), O_RDWR, where);
    if (!lock_for_applying(exclusive.get(), kLockTimeout)) {
      throw Error("table " + table_ + ": cannot commit to '" + dir_ + "': other statements are still reading it after " +
                      std::to_string(kLockTimeout.count()) + " ms; nothing was committed, try COMMIT again",
                  ErrorKind::busy);
    }
    // 4. The commit point: COMMIT appears atomically, and the directory entry is made durable.
    if (::rename((commit_path() + ".tmp").c_str(), commit_path().c_str()) != 0) {
      throw_errno(where + ": cannot rename the commit record in '" + dir_ + "'", errno);
    }
    fsync_or_throw(lock_.get(), dir_, where);
    // 5. Apply it. The transaction is committed: a failure leaves the record for the next statement or open.
    try {
      roll_forward();
    } catch (const std::exception&) {
      // Deliberately not reported here: SQLite would roll back a transaction that is already durable. Every
      // later statement retries and reports it (finish_commit).
    }
    csv_stamp_ = stamp_of(csv_path());
  }

  // Finishes a durable commit record left by a failed apply or a crash, or says why it cannot.
  void finish_commit() {
    if (!commit_pending()) return;
    const std::string where = "table " + table_ + ": '" + dir_ + "' holds a committed transaction not yet applied";
    const Fd exclusive = open_or_throw(meta_path(), O_RDWR, where);
    if (!lock_for_applying(exclusive.get(), kLockTimeout)) {
      throw Error(where + ", and other statements are reading it; try again", ErrorKind::busy);
    }
    try {
      roll_forward();
    } catch (const Error& e) {
      throw Error(where + ": " + e.what() + "; fix the cause, and the next statement finishes it", e.kind());
    }
    load_csv();
  }

  // Takes the shared lock a reading statement holds (none inside this table's own transaction: the writer
  // lock keeps others out) and brings labels.csv up to date.
  Fd read_state() {
    if (undo_.active()) return Fd();
    if (!inspect_ && commit_pending()) {
      // Finished by a writer (which holds the directory) or by us.
      const Fd writer = open_or_throw(dir_, O_RDONLY | O_DIRECTORY, "table " + table_);
      if (wait_for_flock(writer.get(), LOCK_EX, kLockTimeout)) finish_commit();
    }
    Fd shared(::open(meta_path().c_str(), O_RDONLY | O_CLOEXEC));
    if (shared && !lock_for_reading(shared.get(), kLockTimeout)) {
      throw Error("table " + table_ + ": '" + dir_ + "' is being committed to by another process for more than " +
                      std::to_string(kLockTimeout.count()) + " ms; try again",
                  ErrorKind::busy);
    }
    refresh();
    return shared;
  }

  // Our own stores have .imgstore; a directory made by other tools gets it with its first write.
  void ensure_meta() {
    if (::access(meta_path().c_str(), F_OK) == 0) return;
    write_synced(meta_path(), png_dir_format::meta_text(shape_), "table " + table_);
  }

  void write_synced(const std::string& path, const std::string& text, const std::string& where) {
    const Fd fd = open_or_throw(path, O_WRONLY | O_CREAT | O_TRUNC, where);
    write_all(fd.get(), bytes_of(text), path, where);
    fsync_or_throw(fd.get(), path, where);
  }

  // Applies dir/COMMIT; idempotent, so a crash at any point is finished by running it again.
  void roll_forward() {
    const std::string where = "table " + table_ + ": applying the commit record of '" + dir_ + "'";
    std::vector<std::uint8_t> raw;
    read_whole(commit_path(), raw, where);
    const png_dir_format::CommitRecord record = png_dir_format::parse_commit_record(
        std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()), where);
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
      fsync_or_throw(fd.get(), csv_path(), where);
    }
    const Fd dir = open_or_throw(dir_, O_RDONLY | O_DIRECTORY, where);
    fsync_or_throw(dir.get(), dir_, where);
    if (::unlink(commit_path().c_str()) != 0 && errno != ENOENT) throw_errno(where + ": unlink COMMIT", errno);
    std::error_code ec;
    fs::remove(pending_csv, ec);
    fs::remove_all(pending_dir(), ec);
    fsync_or_throw(dir.get(), dir_, where);
  }

  void open(const std::optional<Shape>& wanted, OpenMode mode) {
    struct stat st{};
    if (::stat(dir_.c_str(), &st) == 0) {
      if (!S_ISDIR(st.st_mode)) {
        throw Error("table " + table_ + ": path '" + dir_ + "' is not a directory; expected a directory of PNG files",
                    ErrorKind::cantopen);
      }
    } else {
      if (!wanted || mode != OpenMode::create_if_missing) throw_missing_store(table_, dir_, mode);
      if (::mkdir(dir_.c_str(), 0755) != 0) throw_errno("table " + table_ + ": cannot create '" + dir_ + "'", errno);
    }
    if (!inspect_) recover();
    const bool has_meta = fs::exists(meta_path());
    const bool has_csv = fs::exists(csv_path());
    if (!has_csv && mode != OpenMode::create_if_missing) throw_missing_store(table_, csv_path(), mode);
    if (has_meta) {
      std::vector<std::uint8_t> raw;
      read_whole(meta_path(), raw, "table " + table_);
      shape_ = png_dir_format::parse_meta(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                          "table " + table_ + ": '" + meta_path() + "'");
    }
    if (has_csv) load_csv();
    if (!has_meta) {
      if (!labels_.empty()) {
        // A directory made by other tools: the first image says the shape.
        const std::string first = file_of(labels_.begin()->first);
        std::vector<std::uint8_t> raw;
        read_whole(first, raw, "table " + table_);
        shape_ = png_peek_shape(raw, "table " + table_ + ": '" + first + "'");
      } else if (wanted) {
        shape_ = *wanted;
      } else {
        throw Error("table " + table_ + ": '" + dir_ + "' is not a png_dir store (no labels.csv); give shape='HxWxC' to create one",
                    ErrorKind::cantopen);
      }
      if (wanted && *wanted != shape_) throw_shape_mismatch(*wanted);
      if (!has_csv) ensure_meta();  // a new store; a foreign directory is left as it is until a write
    }
    if (wanted && *wanted != shape_) throw_shape_mismatch(*wanted);
    if (!has_csv) {
      write_synced(csv_path(), "id,label\n", "table " + table_);
      csv_stamp_ = stamp_of(csv_path());
    }
    // Images of another size are refused at open, by the first one, and at every read, by each.
    if (!labels_.empty() && has_meta) {
      const std::string first = file_of(labels_.begin()->first);
      std::vector<std::uint8_t> raw;
      if (fs::exists(first)) {
        read_whole(first, raw, "table " + table_);
        const Shape found = png_peek_shape(raw, "table " + table_ + ": '" + first + "'");
        if (found != shape_) {
          throw Error("table " + table_ + ": '" + first + "' is a " + found.str() + " image; expected " + shape_.str(),
                      ErrorKind::mismatch);
        }
      }
    }
  }

  [[noreturn]] void throw_shape_mismatch(const Shape& wanted) const { throw shape_mismatch(table_, wanted, dir_, shape_); }

  // After a crash: finish a recorded commit, or drop an unfinished transaction's files. Only while no other
  // writer holds the directory (it may be in the middle of its own commit).
  void recover() {
    const Fd fd = open_or_throw(dir_, O_RDONLY | O_DIRECTORY, "table " + table_);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) return;
    finish_commit();
    remove_pending_files();
  }

  void load_csv() {
    std::vector<std::uint8_t> raw;
    const Stamp before = stamp_of(csv_path());
    read_whole(csv_path(), raw, "table " + table_);
    labels_ = png_dir_format::parse_labels_csv(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                               "table " + table_ + ": '" + csv_path() + "'");
    csv_stamp_ = before;
  }


  // Reloads labels.csv if another connection or process committed (never inside our own transaction).
  void refresh(bool force = false) {
    if (undo_.active()) return;
    const Stamp now = stamp_of(csv_path());
    if (force ? now != csv_stamp_ : (now != csv_stamp_ && now.size >= 0)) load_csv();
  }

  const std::string table_;
  const std::string dir_;
  const int level_;
  const bool inspect_;  // imgstore_check: change nothing, not even to finish an interrupted commit
  Shape shape_;
  std::map<std::int64_t, std::int64_t> labels_;  // the rows as this connection sees them
  Stamp csv_stamp_;
  static constexpr std::chrono::milliseconds kLockTimeout = kBusyTimeout;
  // The open transaction.
  UndoLog<Undo> undo_;
  Fd lock_;
  std::uint64_t seq_ = 0;
  std::map<std::int64_t, std::uint64_t> pending_;  // id -> its file in .pending
  std::set<std::int64_t> inserted_;                // ids new in this transaction
  std::set<std::int64_t> deleted_;                 // committed ids whose file goes at commit
  bool full_rewrite_ = false;                      // labels.csv must be rewritten, not appended to
  std::vector<std::uint8_t> encoded_;  // reused PNG buffer
};

PngCursor::PngCursor(PngStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids, Fd read_lock)
    : store_(store), read_lock_(std::move(read_lock)), walk_(range, std::move(ids), by_ids) {
  next();
}

void PngCursor::next() {
  decoded_ = false;
  at_end_ = !walk_.step([&](std::int64_t id) { return store_.label_of(id); },
                        [&](std::int64_t from) { return store_.row_from(from); });
}

std::span<const std::uint8_t> PngCursor::pixels() {
  if (!decoded_) {
    const std::string path = store_.file_of(id());
    const std::string what = "table " + store_.table() + ": '" + path + "'";
    if (::access(path.c_str(), F_OK) != 0) {
      throw Error(what + " is missing; labels.csv lists id " + std::to_string(id()), ErrorKind::corrupt);
    }
    read_whole(path, file_bytes_, "table " + store_.table());
    const Shape found = png_decode(file_bytes_, pixels_, what);
    if (found != store_.shape()) {
      throw Error(what + " is a " + found.str() + " image; expected " + store_.shape().str(), ErrorKind::mismatch);
    }
    decoded_ = true;
  }
  return pixels_;
}

}  // namespace

std::unique_ptr<Store> open_png_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape", "level"}, args);
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_shape(*text, "table " + table + ": shape");
  const int level = static_cast<int>(parsed.integer("level", 0, 9, 6));
  return std::make_unique<PngStore>(table, parsed.require("path"), shape, level, mode);
}

}  // namespace imgstore
