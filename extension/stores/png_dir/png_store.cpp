// png_dir backend: the Store (open, reads, writes, savepoints) and its cursor. The commit protocol and
// recovery are in png_commit.cpp.
//
// On disk: png_dir_format.hpp (the files, labels.csv, the commit record).
//
// Isolation: a statement that reads holds a shared flock on .imgstore for as long as it reads (its cursor's
// life), and a commit writes its record and applies it under the exclusive flock, so a statement sees
// labels.csv and the PNG files of one committed state, never a commit halfway. Readers reload labels.csv when
// it changes. A directory made by other tools (PNGs and labels.csv only) is read as it is; .imgstore is
// written by the first transaction that writes.

#include "png_store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "args.hpp"
#include "thread_pool.hpp"
#include "png_codec.hpp"
#include "png_dir_locks.hpp"
#include "png_store_impl.hpp"

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
      threads_(threads) {
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
  Fd lock = read_state();
  return std::make_unique<PngCursor>(*this, range, std::vector<std::int64_t>{}, false, std::move(lock));
}

std::unique_ptr<Cursor> PngStore::lookup(std::vector<std::int64_t> ids) {
  Fd lock = read_state();
  return std::make_unique<PngCursor>(*this, IdRange{}, std::move(ids), true, std::move(lock));
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

void PngStore::put(const Image& image, bool replace) {
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

bool PngStore::set_label(std::int64_t id, std::int64_t label) {
  undo_.require_active(table_, "UPDATE");
  const auto it = labels_.find(id);
  if (it == labels_.end()) return false;
  remember(id);
  it->second = label;
  if (!inserted_.contains(id)) full_rewrite_ = true;
  return true;
}

bool PngStore::erase(std::int64_t id) {
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

std::vector<std::string> PngStore::check(bool full) {
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

void PngStore::begin() {
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

void PngStore::sync() {
  if (!undo_.active()) return;
  if (!undo_.empty()) commit_changes();
  end_txn();
}

void PngStore::rollback() {
  if (!undo_.active()) return;
  undo_.rollback_all([&](const Undo& u) { undo_one(u); });
  end_txn();
}

void PngStore::rollback_to(int level) {
  undo_.rollback_to(level, [&](const Undo& u) { undo_one(u); });
}

void PngStore::remember(std::int64_t id) {
  const auto label = labels_.find(id);
  const auto pending = pending_.find(id);
  undo_.push(Undo{id, label == labels_.end() ? std::nullopt : std::optional(label->second),
                       pending == pending_.end() ? std::nullopt : std::optional(pending->second),
                       inserted_.contains(id), deleted_.contains(id), full_rewrite_});
}

void PngStore::undo_one(const Undo& u) {
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

Fd PngStore::read_state() {
  if (undo_.active()) return Fd();
  if (!inspect_ && commit_pending()) {
    // Finished by a writer (which holds the directory) or by us.
    const Fd writer = open_or_throw(dir_, O_RDONLY | O_DIRECTORY, "table " + table_);
    if (wait_for_flock(writer.get(), LOCK_EX, timeout_)) finish_commit();
  }
  Fd shared(::open(meta_path().c_str(), O_RDONLY | O_CLOEXEC));
  if (shared && !lock_for_reading(shared.get(), timeout_)) {
    throw Error("table " + table_ + ": '" + dir_ + "' is being committed to by another process for more than " +
                    std::to_string(timeout_.count()) + " ms; try again",
                ErrorKind::busy);
  }
  refresh();
  return shared;
}

void PngStore::ensure_meta() {
  if (::access(meta_path().c_str(), F_OK) == 0) return;
  write_synced(meta_path(), png_dir_format::meta_text(shape_), "table " + table_);
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

void PngStore::load_csv() {
  std::vector<std::uint8_t> raw;
  const Stamp before = stamp_of(csv_path());
  read_whole(csv_path(), raw, "table " + table_);
  labels_ = png_dir_format::parse_labels_csv(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()),
                                             "table " + table_ + ": '" + csv_path() + "'");
  csv_stamp_ = before;
}

void PngStore::refresh(bool force) {
  if (undo_.active()) return;
  const Stamp now = stamp_of(csv_path());
  if (force ? now != csv_stamp_ : (now != csv_stamp_ && now.size >= 0)) load_csv();
}

void PngStore::throw_shape_mismatch(const Shape& wanted) const { throw shape_mismatch(table_, wanted, dir_, shape_); }

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

}  // namespace png_dir

std::unique_ptr<Store> open_png_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape", "level", "timeout", "threads"}, args);
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_shape(*text, "table " + table + ": shape");
  const int level = static_cast<int>(parsed.integer("level", 0, 9, 6));
  return std::make_unique<png_dir::PngStore>(table, parsed.require("path"), shape, level, timeout_argument(parsed),
                                              threads_argument(parsed), mode);
}

}  // namespace imgstore
