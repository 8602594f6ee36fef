// png_dir backend: the Store (open, reads, writes, savepoints) and its cursor. The commit protocol and
// recovery are in png_commit.cpp.
//
// On disk: png_dir_format.hpp (the files, labels.csv, the commit record).
//
// Isolation: a statement starts under the shared reader lock on .imgstore (png_dir_locks.hpp), where it reads
// labels.csv and the generation of one committed state, then holds that generation for as long as it reads;
// a commit that replaces or deletes images keeps the old files for it (png_versions.hpp) and applies its
// record under the exclusive lock, which waits only for statements starting (and for another tool's reader,
// docs/formats.md), never for statements reading. A commit of new ids only changes no file a statement reads:
// it is applied beside them, and a statement that begins while its record is there reads labels.csv up to the
// record's append point (load_csv). Readers reload labels.csv when it changes, but not while a cursor of the
// store is open (its walk reads the labels in memory, of the generation the cursor holds). A directory made by
// other tools (PNGs and labels.csv only) is read as it is; .imgstore is written by the first transaction that
// writes.

#include "png_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "args.hpp"
#include "disk_usage.hpp"
#include "thread_pool.hpp"
#include "png_codec.hpp"
#include "png_dir_locks.hpp"
#include "png_store_impl.hpp"
#include "png_versions.hpp"

namespace imgstore {

namespace png_dir {

namespace {

namespace fs = std::filesystem;

// "'path' <text>", built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + std::string + ... chains.
std::string about(const std::string& path, std::string_view text) {
  std::string out = "'";
  out.append(path).append("' ").append(text);
  return out;
}

}  // namespace

Stamp stamp_of(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_ino, st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

PngStore::PngStore(std::string table, std::string dir, std::optional<Shape> wanted, int level,
                   std::chrono::milliseconds timeout, unsigned threads, OpenMode mode)
    : table_(std::move(table)),
      dir_(std::move(dir)),
      level_(level),
      inspect_(mode == OpenMode::inspect),
      timeout_(timeout),
      pool_(threads) {
  window_limit_ = 4 * std::size_t{pool_.threads()};  // enough to keep every worker busy while the writes catch up
  open(wanted, mode);
}

PngStore::~PngStore() {
  if (undo_.active()) {
    try {
      rollback();
    } catch (...) {
    }
  }
}

std::uint64_t PngStore::count() {
  const Fd lock = read_state();
  return labels_.size();
}

std::optional<std::int64_t> PngStore::max_id() {
  const Fd lock = read_state();
  if (labels_.empty()) return std::nullopt;
  return labels_.rbegin()->first;
}

std::unique_ptr<Cursor> PngStore::scan(IdRange range) {
  flush_writes();
  Fd lock = read_state();
  ThreadPool* const ahead = undo_.active() ? nullptr : pool_.get();
  return std::make_unique<PngCursor>(*this, range, std::vector<std::int64_t>{}, false, std::move(lock), reading_as_of(), ahead);
}

std::unique_ptr<Cursor> PngStore::lookup(std::vector<std::int64_t> ids) {
  flush_writes();
  Fd lock = read_state();
  ThreadPool* const ahead = undo_.active() ? nullptr : pool_.get();
  return std::make_unique<PngCursor>(*this, IdRange{}, std::move(ids), true, std::move(lock), reading_as_of(), ahead);
}

std::optional<std::pair<std::int64_t, std::int64_t>> PngStore::row_from(std::int64_t from) const {
  const auto it = labels_.lower_bound(from);
  if (it == labels_.end()) return std::nullopt;
  return *it;
}

std::optional<std::int64_t> PngStore::label_of(std::int64_t id) const {
  const auto it = labels_.find(id);
  if (it == labels_.end()) return std::nullopt;
  return it->second;
}

std::string PngStore::file_of(std::int64_t id) const {
  const auto it = pending_.find(id);
  if (it != pending_.end()) return pending_name(id, it->second);
  return dir_ + "/" + png_dir_format::image_name(id);
}

bool PngStore::set_label(std::int64_t id, std::int64_t label) {
  undo_.require_active(table_, "UPDATE");
  const auto it = labels_.find(id);
  if (it == labels_.end()) return false;
  remember(id, false);
  it->second = label;
  if (!inserted_.contains(id)) full_rewrite_ = true;
  return true;
}

bool PngStore::erase(std::int64_t id) {
  undo_.require_active(table_, "DELETE");
  if (!labels_.contains(id)) return false;
  remember(id, false);
  labels_.erase(id);
  pending_.erase(id);
  if (inserted_.erase(id) == 0) {
    deleted_.insert(id);
    full_rewrite_ = true;
  }
  return true;
}

// A png_dir store keeps no dead rows: a commit removes deleted images' files and writes replaced ones in their
// place. Compacting it only settles it: an interrupted commit finished, an unfinished transaction's files
// removed (what beginning a transaction does), under the writer lock.
Compacted PngStore::compact() {
  Compacted done;
  done.bytes_before = disk_usage(dir_).allocated;
  begin();
  rollback();
  done.rows = count();
  done.bytes_after = disk_usage(dir_).allocated;
  return done;
}

std::vector<std::string> PngStore::check(bool full) {
  flush_writes();
  const Fd lock = read_state();
  std::vector<std::string> problems;
  if (::access(meta_path().c_str(), F_OK) == 0 && record_unapplied(lock)) {
    problems.push_back(about(commit_path(), "holds a committed transaction not yet applied; imgstore_repair() finishes it"));
  } else if (::access(pending_dir().c_str(), F_OK) == 0 && !undo_.active()) {
    problems.push_back(about(pending_dir(), "is left by a transaction that did not commit; imgstore_repair() removes it"));
  }
  std::set<std::string> listed;
  std::vector<std::uint8_t> raw;
  std::vector<std::uint8_t> pixels;
  const std::optional<std::uint64_t> as_of = reading_as_of();
  for (const auto& [id, label] : labels_) {
    const std::string path = file_of(id);
    listed.insert(fs::path(path).filename().string());
    std::string opened;
    Fd file;
    try {
      file = open_as_of(dir_, path, id, as_of, opened, "table " + table_);
    } catch (const Error& e) {
      problems.push_back(e.what());
      continue;
    }
    if (!file) {
      problems.push_back(about(path, "is missing; labels.csv lists id " + std::to_string(id)));
      continue;
    }
    if (!full) continue;
    try {
      read_whole(file.get(), opened, raw, "table " + table_);
      const Shape found = png_decode(raw, pixels, "'" + opened + "'");
      if (!shape_.any && found != shape_) problems.push_back(about(opened, "is a " + found.str() + " image; expected " + shape_.str()));
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

void PngStore::begin() {
  if (undo_.active()) return;
  lock_writer();
  try {
    finish_commit();
    refresh(true);  // another writer may have committed since we last looked
    make_pending_dir();
    ensure_meta();
    prune_old_files();
  } catch (...) {
    lock_.release();
    throw;
  }
  undo_.begin();
  seq_ = 0;
}

void PngStore::sync() {
  if (!undo_.active()) return;
  flush_writes();
  throw_if_broken();
  if (!undo_.empty()) commit_changes();
  end_txn();
}

void PngStore::sync_after_syncfs() {
  // Only files written before the caller's syncfs are covered: with rows still in the write window (threads
  // > 1), this store syncs itself.
  if (!window_.empty()) {
    sync();
    return;
  }
  struct Synced {
    bool& flag;
    explicit Synced(bool& f) : flag(f) { flag = true; }
    ~Synced() { flag = false; }
  } const synced(files_synced_);
  sync();
}

void PngStore::rollback() {
  if (!undo_.active()) return;
  discard_writes();  // before the undo unlinks files, so no write in flight makes one again
  undo_.rollback_all([&](const Undo& u) { undo_one(u); });
  broken_.reset();
  end_txn();
}

void PngStore::savepoint(int level) {
  flush_writes();
  undo_.savepoint(level);
}

// A statement ends here inside a transaction: its last rows must be on disk, or it fails now. (SQLite then
// rolls back the whole transaction, as for any failing xRelease; only I/O errors get this far, as put()
// checks each row itself.)
void PngStore::release(int level) {
  flush_writes();
  undo_.release(level);
}

void PngStore::rollback_to(int level) {
  discard_writes();
  undo_.rollback_to(level, [&](const Undo& u) { undo_one(u); });
  if (broken_ && undo_size_ <= broken_->undo_size) broken_.reset();
}

void PngStore::remember(std::int64_t id, bool direct) {
  const auto label = labels_.find(id);
  const auto pending = pending_.find(id);
  undo_.push(Undo{id, label == labels_.end() ? std::nullopt : std::optional(label->second),
                       pending == pending_.end() ? std::nullopt : std::optional(pending->second),
                       inserted_.contains(id), deleted_.contains(id), full_rewrite_, direct});
  ++undo_size_;
}

void PngStore::undo_one(const Undo& u) {
  --undo_size_;
  if (u.direct) {
    const std::string path = dir_ + "/" + png_dir_format::image_name(u.id);
    ::unlink(path.c_str());  // a failure leaves an unlisted file, which imgstore_check reports
    direct_.erase(u.id);
  }
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

Fd PngStore::lock_shared(bool& on_directory) const {
  on_directory = false;
  Fd shared(::open(meta_path().c_str(), O_RDONLY | O_CLOEXEC));
  if (!shared) {
    // A directory made by another tool, not yet written by imgstore (no .imgstore, so no generation): the
    // statement holds the directory shared (flock), which the first writer's flock waits for, so that first
    // commit cannot change files under it.
    shared = Fd(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!shared) return shared;
    on_directory = true;
    if (!wait_for([&] { return ::flock(shared.get(), LOCK_SH | LOCK_NB) == 0; }, timeout_)) {
      throw Error("table " + table_ + ": '" + dir_ + "' is being written by another connection or process for more than " +
                      std::to_string(timeout_.count()) + " ms; try again",
                  ErrorKind::busy);
    }
    return shared;
  }
  if (!lock_for_reading(shared.get(), timeout_)) {
    throw Error("table " + table_ + ": '" + dir_ + "' is being committed to by another process for more than " +
                    std::to_string(timeout_.count()) + " ms; try again",
                ErrorKind::busy);
  }
  return shared;
}

bool PngStore::record_unapplied(const Fd& shared) const {
  return commit_pending() && !(shared && record_held(shared.get()));
}

std::optional<std::uint64_t> PngStore::reading_as_of() const {
  if (undo_.active()) return std::nullopt;
  return labels_gen_;
}

Fd PngStore::read_state() {
  // Prepared for a sharded commit, this store holds the exclusive lock itself: its rows are those it committed.
  if (undo_.active() || prepared_) return Fd();
  bool on_directory = false;
  Fd shared = lock_shared(on_directory);
  if (!inspect_ && !on_directory && record_unapplied(shared)) {
    // A record no live writer stands behind (it died, or its apply failed): finished by that writer (which
    // holds the directory until its transaction ends) or by us, under the exclusive lock our own shared one
    // would block.
    shared = Fd();
    const WriterLock writer(writer_spot(), timeout_, "table " + table_);
    if (writer) finish_commit();
    shared = lock_shared(on_directory);
  }
  if (meta_v1_ && !on_directory) meta_v1_ = read_meta_v1();  // marked version 2 since, by another connection?
  refresh();
  // From here the statement holds only its generation: commits go on beside it. Not on a version 1 store: a
  // writer of an earlier build keeps no old files, so the statement holds the reader lock while it reads.
  if (shared && !meta_v1_ && !on_directory) hold_generation(shared.get(), labels_gen_, "table " + table_);
  return shared;
}

bool PngStore::read_meta_v1() const {
  std::vector<std::uint8_t> raw;
  read_whole(meta_path(), raw, "table " + table_);
  return png_dir_format::is_version_1(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

void PngStore::ensure_meta() {
  if (meta_current_) return;
  const std::string where = "table " + table_;
  if (::access(meta_path().c_str(), F_OK) != 0) {
    write_synced(meta_path(), png_dir_format::meta_text(shape_), where);
  } else if (read_meta_v1()) {
    // Version 1 -> 2 in place: one byte, the last of the tag (a rename would lose the locks others hold).
    const std::string_view v1 = png_dir_format::format_tag_v1;
    const std::string_view v2 = png_dir_format::format_tag;
    const Fd fd = open_or_throw(meta_path(), O_WRONLY, where);
    if (::pwrite(fd.get(), v2.data() + v2.size() - 1, 1, static_cast<off_t>(v1.size() - 1)) != 1) {
      throw_errno(where + ": cannot mark '" + meta_path() + "' as version 2", errno);
    }
    fsync_or_throw(fd.get(), meta_path(), where);
  }
  meta_current_ = true;
  meta_v1_ = false;
}

void PngStore::open(const std::optional<Shape>& wanted, OpenMode mode) {
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
    const std::string_view text(reinterpret_cast<const char*>(raw.data()), raw.size());
    shape_ = png_dir_format::parse_meta(text, "table " + table_ + ": '" + meta_path() + "'");
    meta_v1_ = png_dir_format::is_version_1(text);
  }
  if (has_csv) load_csv();
  if (!has_meta) {
    if (!labels_.empty() && wanted && wanted->any) {
      shape_ = *wanted;  // a directory made by other tools, of images of any size
    } else if (!labels_.empty()) {
      // A directory made by other tools: the first image says the shape.
      const std::string first = file_of(labels_.begin()->first);
      std::vector<std::uint8_t> raw;
      read_whole(first, raw, "table " + table_);
      shape_ = png_peek_shape(raw, "table " + table_ + ": '" + first + "'");
    } else if (wanted) {
      shape_ = *wanted;
    } else {
      // A folder of class sub-folders is most likely a user's ImageFolder tree of photos: say how it is read.
      std::error_code ec;
      bool has_subfolder = false;
      for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->is_directory(ec)) {
          has_subfolder = true;
          break;
        }
      }
      const std::string hint =
          has_subfolder ? "; a folder of <class>/ sub-folders of PNG and JPEG files (torchvision's ImageFolder "
                          "layout) is read with image_folder('" + dir_ + "')"
                        : std::string();
      throw Error("table " + table_ + ": '" + dir_ +
                      "' is not a png_dir store (no labels.csv); give shape='HxWxC' (or 'any') to create one" + hint,
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
  if (!labels_.empty() && has_meta && !shape_.any) {
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

void PngStore::load_csv() {
  const std::string where = "table " + table_ + ": '" + csv_path() + "'";
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    std::optional<std::int64_t> cut = appending_at();
    const Stamp before = stamp_of(csv_path());
    std::vector<std::uint8_t> raw;
    read_whole(csv_path(), raw, "table " + table_);
    if (!cut) cut = appending_at();  // a commit that began while we read: its lines may be in `raw`, part of them
    const bool whole = !cut && stamp_of(csv_path()) == before && static_cast<off_t>(raw.size()) == before.size;
    if (cut || whole) {
      if (cut && *cut >= 0 && static_cast<std::size_t>(*cut) < raw.size()) raw.resize(static_cast<std::size_t>(*cut));
      labels_ = png_dir_format::parse_labels_csv(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                                 where);
      // After a cut, the next statement reads the file again (the commit's lines are committed by then).
      csv_stamp_ = cut ? Stamp{} : before;
      return;
    }
    // It grew while we read it: a commit appended and finished meanwhile; read it again.
    if (std::chrono::steady_clock::now() >= deadline) {
      throw Error(where + " kept changing while being read for " + std::to_string(timeout_.count()) + " ms; try again",
                  ErrorKind::busy);
    }
  }
}

std::optional<std::int64_t> PngStore::appending_at() const {
  std::vector<std::uint8_t> raw;
  try {
    read_whole(commit_path(), raw, "table " + table_);
  } catch (const Error&) {
    return std::nullopt;  // no record (or it went meanwhile: applied, labels.csv synced)
  }
  const auto record = png_dir_format::parse_commit_record(
      std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
      "table " + table_ + ": the commit record of '" + dir_ + "'");
  // A record that changes files readers read is applied under the exclusive lock our shared one excludes: the
  // file is wholly before it or wholly after it.
  if (!png_dir_format::appends_only(record)) return std::nullopt;
  return record.append_at;
}

void PngStore::refresh(bool force) {
  if (undo_.active() || open_cursors_ > 0) return;
  const Stamp now = stamp_of(csv_path());
  if (force ? now != csv_stamp_ : (now != csv_stamp_ && now.size >= 0)) load_csv();
  labels_gen_ = read_generation(dir_, "table " + table_);
}

void PngStore::throw_shape_mismatch(const Shape& wanted) const { throw shape_mismatch(table_, wanted, dir_, shape_); }

}  // namespace png_dir

std::unique_ptr<Store> open_png_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape", "level", "timeout", "threads"}, args);
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_store_shape(*text, "table " + table + ": shape");
  const int level = static_cast<int>(parsed.integer("level", 0, 9, 6));
  return std::make_unique<png_dir::PngStore>(table, parsed.require("path"), shape, level, timeout_argument(parsed),
                                              threads_argument(parsed), mode);
}

}  // namespace imgstore
