// HDF5 backend: the Store over an hdf5_file.hpp file (its layout is documented there).
//
// Transactions: new rows are written past the committed count, a block of chunks per H5Dwrite; label changes
// and deletes are kept in memory (the transaction core, undo_log.hpp). COMMIT writes the new rows' /ids and
// /labels; if committed rows change (a tombstone, a new label), their old values first go to a synced journal
// (hdf5_journal.hpp) and are then written in place; then the committed row count, flush and fsync. Version 2
// (SWMR, hdf5_format.hpp): /commit's generation is odd (synced) while committed rows change in place, and
// /commit = [next even generation, rows] is the commit point, for readers in other processes too (version 1
// files are read-only). ROLLBACK forgets the changes and H5File::end_transaction trims the datasets back to
// the committed rows. A replaced image (OR REPLACE, UPDATE of pixels) is a new row plus a tombstone, so
// committed pixels are never overwritten in place. Deleted rows keep their space until the store is copied
// into a new one. Statements read a published, immutable committed state (hdf5_file.hpp). Every write and
// every change of the file's mode goes through H5File's members, which refuse outside its transaction.
//
// A store of shape 'any' (hdf5_format.hpp) differs where its layout does, in named branches (f_->ragged()):
// new rows append their bytes to the 1-D /images (flush_ragged_block) and record where they start and their
// shape (new_extents_, written to /offsets and /shapes at COMMIT); a row's checksum also covers its shape;
// gzip goes through HDF5's own filter (pool() gives no workers: its chunks hold parts of images, not rows).

#include "hdf5_store.hpp"

#include <hdf5.h>

#include <algorithm>
#include <cstring>

#include "args.hpp"
#include "busy.hpp"
#include "checksum.hpp"
#include "disk_usage.hpp"
#include "hdf5_journal.hpp"
#include "hdf5_store_impl.hpp"

namespace imgstore {
namespace hdf5 {

Hdf5Store::~Hdf5Store() {
  if (undo_.active()) {
    try {
      rollback();
    } catch (...) {
    }
  }
}

bool Hdf5Store::direct_chunks() const { return f_->deflate() > 0 && !f_->ragged(); }

ThreadPool* Hdf5Store::pool() {
  // Nothing to compress: no workers. A store of shape 'any' compresses through HDF5's filter (H5Dwrite of its
  // 1-D /images): the direct chunk path of hdf5_chunks.hpp cuts chunks at row boundaries.
  if (f_->deflate() == 0 || f_->ragged()) return nullptr;
  return pool_.get();
}

void Hdf5Store::settle() {
  if (writer_ && !writer_->empty()) writer_->write(*f_, true, f_->where(table_) + ": writing compressed chunks");
}

std::shared_ptr<const Committed> Hdf5Store::snapshot() {
  const Lock lock(hdf5_mutex());
  if (!undo_.active()) {
    follow_replacement();
    f_->refresh(table_, timeout_);  // another process may have committed
  }
  return f_->committed();
}

void Hdf5Store::follow_replacement() {
  if (undo_.active() || !f_->replaced()) return;
  f_ = H5File::open(table_, f_->path(), f_->shape(), Compression{f_->deflate()}, f_->chunk_rows(), OpenMode::must_exist,
                    timeout_);
  writer_.reset();
  ++generation_;
}

// Dead rows hold at least this much before a commit compacts by itself: small stores are not rewritten for
// a few deletes.
constexpr std::uint64_t kDeadBytesToCompact = std::uint64_t{1} << 20;

bool Hdf5Store::compact_if_mostly_dead() {
  const auto c = f_->committed();
  std::uint64_t live = c->index.size();
  std::uint64_t dead = c->rows - live;
  std::uint64_t dead_bytes = dead * shape().bytes();
  if (f_->ragged() && dead > 0) {  // rows differ in size: live and dead counted in bytes
    live = 0;
    for (const auto& [id, row] : c->index) live += shape_of(c->row_dims[row]).value_or(Shape{}).bytes();
    dead = dead_bytes = c->bytes - std::min(live, c->bytes);
  }
  if (dead <= live || dead_bytes < kDeadBytesToCompact || !f_->checksummed()) return false;
  try {
    f_->compact(table_, std::chrono::milliseconds(0));  // not if another writer came first: its commit will
    return true;
  } catch (const Error&) {
    return false;  // the commit stands; the next commit tries again (a damaged image: imgstore_check says which)
  }
}

Compacted Hdf5Store::compact() {
  if (undo_.active()) throw Error("table " + table_ + ": cannot compact inside a transaction; COMMIT first");
  Compacted done;
  {
    const Lock lock(hdf5_mutex());
    follow_replacement();
    done.bytes_before = disk_usage(f_->path()).allocated;
  }
  done.rows = f_->compact(table_, timeout_);
  const Lock lock(hdf5_mutex());
  follow_replacement();
  done.bytes_after = disk_usage(f_->path()).allocated;
  return done;
}

std::uint64_t Hdf5Store::count() {
  const Lock lock(hdf5_mutex());
  const auto snap = snapshot();
  const Committed& c = *snap;
  std::uint64_t n = c.index.size();
  for (const auto& [id, row] : overlay_) {
    const bool committed = c.index.contains(id);
    if (row && !committed) ++n;
    if (!row && committed) --n;
  }
  return n;
}

std::optional<std::int64_t> Hdf5Store::max_id() {
  const Lock lock(hdf5_mutex());
  const auto snap = snapshot();
  const Committed& c = *snap;
  std::optional<std::int64_t> best;
  for (auto it = c.index.rbegin(); it != c.index.rend(); ++it) {
    const auto o = overlay_.find(it->first);
    if (o == overlay_.end() || o->second) {  // the committed maximum, unless this transaction deleted it
      best = it->first;
      break;
    }
  }
  if (const auto m = max_overlay(); m >= 0 && (!best || m > *best)) best = m;
  return best;
}

std::optional<std::uint64_t> Hdf5Store::row_of(const Committed& c, std::int64_t id) const {
  const auto o = overlay_.find(id);
  if (o != overlay_.end()) return o->second;
  return c.row_of(id);
}

std::optional<std::pair<std::int64_t, std::uint64_t>> Hdf5Store::first_from(const Committed& snap, std::int64_t from,
                                                                          Committed::Index::const_iterator& hint) const {
  // A scan asks for the id after the last one: one step from the hint instead of a search of the tree.
  auto c = hint;
  for (int steps = 0; c != snap.index.end() && c->first < from && steps < 4; ++steps) ++c;
  if (hint == snap.index.end() || hint->first >= from || (c != snap.index.end() && c->first < from)) {
    c = snap.index.lower_bound(from);
  }
  hint = c;
  auto o = overlay_.empty() ? overlay_.end() : overlay_.lower_bound(from);
  while (true) {
    const bool has_c = c != snap.index.end();
    const bool has_o = o != overlay_.end();
    if (!has_c && !has_o) return std::nullopt;
    if (has_o && (!has_c || o->first <= c->first)) {
      if (has_c && c->first == o->first) ++c;  // the overlay decides for this id
      if (o->second) return std::pair{o->first, *o->second};
      ++o;
      continue;
    }
    return *c;
  }
}

std::int64_t Hdf5Store::label_at(const Committed& c, std::uint64_t row) const {
  if (row >= c.rows) return new_labels_[row - c.rows];
  const auto it = label_overlay_.find(row);
  return it != label_overlay_.end() ? it->second : c.row_labels[row];
}

void Hdf5Store::verify(const Committed& c, std::uint64_t row, std::int64_t id, std::span<const std::uint8_t> pixels) const {
  const PixelCheck check = check_of(c, row);
  if (const auto computed = failed_check(check, id, pixels)) {
    // (Shape 'any': the error shows the stored checksum and the one computed, each with the shape's term.)
    const std::uint64_t shape = check.kind == PixelCheck::Kind::image && f_->ragged()
                                    ? shape_term(Shape{c.row_dims[row][0], c.row_dims[row][1], c.row_dims[row][2]})
                                    : 0;
    throw damaged_image(table_, id, f_->path(), check.expected ^ shape, *computed ^ shape);
  }
}

// A committed row's checksum covers its committed label (a relabel in this transaction changes the label, not
// the stored checksum, until it commits); a row of this transaction has only its pixels' term so far.
PixelCheck Hdf5Store::check_of(const Committed& c, std::uint64_t row) const {
  if (!verify_ || !f_->checksummed()) return {};
  if (row < c.rows) {
    if (row >= c.row_checksums.size()) return {};  // (a state read before the file had checksums)
    if (f_->ragged()) {  // the stored checksum has the shape's term too: taken out, as image_checksum has none
      const RowDims& d = c.row_dims[row];
      return {PixelCheck::Kind::image, c.row_checksums[row] ^ shape_term(Shape{d[0], d[1], d[2]}), c.row_labels[row]};
    }
    return {PixelCheck::Kind::image, c.row_checksums[row], c.row_labels[row]};
  }
  const std::uint64_t i = row - c.rows;
  if (i >= new_pixel_terms_.size()) return {};
  return {PixelCheck::Kind::pixels, new_pixel_terms_[i], 0};
}

const std::uint8_t* Hdf5Store::buffered(std::uint64_t row) const {
  if (row < rows_in_file()) return nullptr;
  if (f_->ragged()) {
    const std::uint64_t first = f_->committed()->rows;  // new row 0
    return pending_.data() + (new_offset(row - first) - new_offset(flushed_));
  }
  return pending_.data() + (row - rows_in_file()) * shape().bytes();
}

std::uint64_t Hdf5Store::new_offset(std::uint64_t i) const {
  if (i < new_extents_.size()) return new_extents_[i].offset;
  if (new_extents_.empty()) return f_->committed()->bytes;
  return new_extents_.back().offset + new_extents_.back().bytes;
}

Hdf5Store::RaggedRow Hdf5Store::ragged_row(const Committed& c, std::uint64_t row, std::int64_t id) const {
  if (row >= c.rows) {
    if (row - c.rows >= new_extents_.size()) {
      throw Error("table " + table_ + ": id " + std::to_string(id) + " names a row this transaction does not have "
                  "(an internal error)");
    }
    const NewExtent& e = new_extents_[row - c.rows];
    return {e.offset, *shape_of(e.dims)};
  }
  if (row >= c.row_offsets.size() || !row_end(c.row_offsets[row], c.row_dims[row], c.bytes)) {
    throw damaged_entry(table_, id, f_->path(), row < c.row_offsets.size() ? c.row_offsets[row] : 0,
                        row < c.row_dims.size() ? c.row_dims[row] : RowDims{}, c.bytes);
  }
  return {c.row_offsets[row], *shape_of(c.row_dims[row])};
}

void Hdf5Store::put(const Image& image, bool replace) {
  const Lock lock(hdf5_mutex());
  undo_.require_active(table_, "INSERT");
  const RowDims dims = row_dims(image.shape);
  if (f_->ragged() && (!shape_of(dims) || image.pixels.size() != image.shape.bytes())) {
    throw Error("table " + table_ + ": id " + std::to_string(image.id) + ": " + std::to_string(image.pixels.size()) +
                    " bytes of pixels with shape '" + image.shape.str() +
                    "'; expected an image shape (height, width, channels 1..4) and height*width*channels bytes",
                ErrorKind::constraint);
  }
  const auto existing = row_of(*f_->committed(), image.id);
  if (existing && !replace) {
    throw Error("table " + table_ + ": id " + std::to_string(image.id) +
                    " already exists; expected a unique id (INSERT OR REPLACE overwrites)",
                ErrorKind::constraint);
  }
  // Always a new row: committed pixels are never overwritten in place. The undo record is taken before the
  // row is counted, so undoing it also forgets the row.
  remember_id(image.id);
  const std::uint64_t row = f_->committed()->rows + appended_;
  if (f_->ragged()) new_extents_.push_back({new_offset(appended_), image.pixels.size(), dims});
  pending_.insert(pending_.end(), image.pixels.begin(), image.pixels.end());
  new_labels_.push_back(image.label);
  if (f_->checksummed()) {
    new_ids_.push_back(image.id);
    new_pixel_terms_.push_back(pixels_term(image.id, image.pixels));
  }
  ++appended_;
  overlay_[image.id] = row;
  if (pending_.size() >= write_block_bytes()) flush_block();
}

bool Hdf5Store::set_label(std::int64_t id, std::int64_t label) {
  const Lock lock(hdf5_mutex());
  undo_.require_active(table_, "UPDATE");
  const Committed& c = *f_->committed();
  const auto row = row_of(c, id);
  if (!row) return false;
  if (*row >= c.rows) {
    undo_.push(Undo{Undo::kNewLabel, id, *row, new_labels_[*row - c.rows], std::nullopt, false, appended_});
    new_labels_[*row - c.rows] = label;
  } else {
    const auto old = label_overlay_.find(*row);
    undo_.push(Undo{Undo::kLabel, id, *row, old == label_overlay_.end() ? 0 : old->second, std::nullopt,
                    old != label_overlay_.end(), appended_});
    label_overlay_[*row] = label;
  }
  return true;
}

bool Hdf5Store::erase(std::int64_t id) {
  const Lock lock(hdf5_mutex());
  undo_.require_active(table_, "DELETE");
  if (!row_of(*f_->committed(), id)) return false;
  remember_id(id);
  overlay_[id] = std::nullopt;
  return true;
}

std::vector<std::string> Hdf5Store::check(bool full) {
  const Lock lock(hdf5_mutex());
  std::vector<std::string> problems;
  const std::string what = f_->where(table_);
  std::shared_ptr<const Committed> snap = f_->committed();
  try {
    f_->ensure_open(table_, timeout_);
    snap = snapshot();
    const Committed& c = *snap;
    for (const auto& [name, dset] : {std::pair{"images", Dataset::images}, std::pair{"labels", Dataset::labels},
                                     std::pair{"ids", Dataset::ids}, std::pair{"checksums", Dataset::checksums},
                                     std::pair{"offsets", Dataset::offsets}, std::pair{"shapes", Dataset::shapes}}) {
      if (dset == Dataset::checksums && !f_->checksummed()) continue;
      if ((dset == Dataset::offsets || dset == Dataset::shapes) && !f_->ragged()) continue;
      const std::uint64_t n = f_->extent(dset, what);
      if (f_->ragged() && dset == Dataset::images) {
        if (n < c.bytes) {
          problems.push_back("/images has " + std::to_string(n) + " bytes; the committed images end at byte " +
                             std::to_string(c.bytes));
        }
      } else if (n < c.rows) {
        // Built with append: GCC 12 warns falsely (-Wrestrict) on "/" + std::string(...) chains.
        std::string problem = "/";
        problem.append(name).append(" has ").append(std::to_string(n)).append(" rows; the committed row count is ");
        problem.append(std::to_string(c.rows));
        problems.push_back(problem);
      }
    }
    std::vector<std::int64_t> ids(c.rows);
    if (c.rows > 0) f_->read(Dataset::ids, 0, c.rows, ids.data(), what + ": reading /ids");
    if (ids != c.row_ids) problems.push_back("/ids on disk differs from what was read at open");
    // (Beside a version 2 file a live writer in another process has its journal while it commits.)
    if (::access(journal_path(f_->path()).c_str(), F_OK) == 0 && !f_->writing() && !(f_->version() >= 2 && f_->writer_active())) {
      std::string problem = journal_path(f_->path());
      problem.append(" is left from an interrupted commit; imgstore_repair() (or the next table opened on it) rolls it back");
      problems.push_back(problem);
    }
    // Every chunk that holds committed rows must exist: HDF5 reads a missing chunk as zeros, silently.
    hsize_t chunks = 0;
    const Hid space = checked(H5Dget_space(f_->images_id()), H5Sclose, what);
    if (H5Dget_num_chunks(f_->images_id(), space.get(), &chunks) >= 0) {
      const std::uint64_t length = f_->image_length(c);
      const std::uint64_t wanted = (length + f_->chunk_rows() - 1) / f_->chunk_rows();
      if (chunks < wanted) {
        problems.push_back("/images has " + std::to_string(chunks) + " chunks; its " + std::to_string(length) +
                           (f_->ragged() ? " bytes need " : " rows need ") + std::to_string(wanted) +
                           " (the file is damaged: missing chunks read as zeros)");
      }
    }
    if (f_->ragged()) {
      check_ragged(c, full && problems.empty(), problems);
    } else if (full && problems.empty()) {
      // Every image read back, a block of chunks at a time: damaged chunks (and bad gzip data) show here, and
      // (version 3) every live image whose checksum does not match, by id.
      const std::size_t bytes = shape().bytes();
      const std::uint64_t block = block_rows(f_->chunk_rows(), bytes, kScanBlockBytes);
      std::vector<std::uint8_t> buffer;
      for (std::uint64_t row = 0; row < c.rows; row += block) {
        const std::uint64_t n = std::min(block, c.rows - row);
        buffer.resize(n * bytes);
        const std::string rows = "rows " + std::to_string(row) + " to " + std::to_string(row + n - 1) + " of /images";
        try {
          f_->read(Dataset::images, row, n, buffer.data(), rows);
        } catch (const Error& e) {
          problems.push_back(e.what());
          continue;  // the next block may read
        }
        if (!f_->checksummed() || c.row_checksums.size() < c.rows) continue;
        for (std::uint64_t r = row; r < row + n; ++r) {
          const std::int64_t id = c.row_ids[r];
          if (id < 0) continue;
          const std::span<const std::uint8_t> px(buffer.data() + (r - row) * bytes, bytes);
          if (const std::uint64_t computed = image_checksum(id, c.row_labels[r], px); computed != c.row_checksums[r]) {
            problems.push_back("image " + std::to_string(id) + " (row " + std::to_string(r) + " of /images) " +
                               checksum_mismatch(c.row_checksums[r], computed));
          }
        }
      }
    }
  } catch (const Error& e) {
    problems.push_back(e.what());
  }
  return problems;
}

// check() of a store of shape 'any': every live row's /offsets and /shapes entries, and with `full` every live
// image read back (a block of bytes at a time, in row order: the file's order) and checked with its shape.
void Hdf5Store::check_ragged(const Committed& c, bool full, std::vector<std::string>& problems) {
  std::vector<std::uint8_t> block;
  std::uint64_t block_first = 0;  // the bytes of /images in `block`
  std::uint64_t failed_first = 0, failed_end = 0;  // a block that did not read: its rows are not read again
  for (std::uint64_t r = 0; r < c.rows; ++r) {
    const std::int64_t id = c.row_ids[r];
    if (id < 0) continue;
    const auto end = row_end(c.row_offsets[r], c.row_dims[r], c.bytes);
    if (!end) {
      const std::string e = damaged_entry(table_, id, f_->path(), c.row_offsets[r], c.row_dims[r], c.bytes).what();
      problems.push_back("image " + std::to_string(id) + " (row " + std::to_string(r) + ") " +
                         e.substr(e.find("is damaged")));
      continue;
    }
    if (!full) continue;
    const std::uint64_t offset = c.row_offsets[r];
    if (offset >= failed_first && *end <= failed_end) continue;
    if (offset < block_first || *end > block_first + block.size()) {
      block_first = offset;
      block.resize(std::min(std::max(kScanBlockBytes, *end - offset), c.bytes - offset));
      try {
        f_->read(Dataset::images, block_first, block.size(), block.data(),
                 "bytes " + std::to_string(block_first) + " to " + std::to_string(block_first + block.size() - 1) +
                     " of /images");
      } catch (const Error& e) {
        problems.push_back(e.what());
        failed_first = block_first;
        failed_end = block_first + block.size();
        block.clear();
        continue;
      }
    }
    if (!f_->checksummed() || c.row_checksums.size() < c.rows) continue;
    const Shape shape = *shape_of(c.row_dims[r]);
    const std::span<const std::uint8_t> px(block.data() + (offset - block_first), shape.bytes());
    const std::uint64_t computed = image_checksum(id, c.row_labels[r], px) ^ shape_term(shape);
    if (computed != c.row_checksums[r]) {
      problems.push_back("image " + std::to_string(id) + " (row " + std::to_string(r) + ", " + shape.str() + " at byte " +
                         std::to_string(offset) + " of /images) " + checksum_mismatch(c.row_checksums[r], computed));
    }
  }
}

void Hdf5Store::begin() {
  if (undo_.active()) return;
  {
    const Lock lock(hdf5_mutex());
    follow_replacement();
  }
  // Compacted while this table waited for the writer lock: the new file, as often as that happens in `timeout`.
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    try {
      f_->begin_transaction(table_, timeout_);
      break;
    } catch (const Error&) {
      const Lock lock(hdf5_mutex());
      if (!f_->replaced()) throw;
      if (std::chrono::steady_clock::now() > deadline) {
        throw_writer_busy(table_, f_->path(), "another process (compacting it)", timeout_);
      }
      follow_replacement();
    }
  }
  undo_.begin();
}

void Hdf5Store::sync() {
  const Lock lock(hdf5_mutex());
  if (!undo_.active()) return;
  bool committed = false;
  try {
    if (!undo_.empty() || appended_ > 0) {
      commit_changes();
      committed = true;
    }
  } catch (...) {
    try {
      discard();
    } catch (...) {
      // The commit's own error is the one to report.
    }
    throw;
  }
  finish();
  if (committed && compact_if_mostly_dead()) follow_replacement();
}

void Hdf5Store::rollback() {
  const Lock lock(hdf5_mutex());
  if (!undo_.active()) return;
  discard();
}

void Hdf5Store::rollback_to(int level) {
  const Lock lock(hdf5_mutex());
  std::optional<std::uint64_t> appended;  // the new-row count before the oldest undone change
  undo_.rollback_to(level, [&](const Undo& u) {
    undo_one(u);
    appended = u.appended;
  });
  if (appended) truncate_new_rows(*appended);
}

std::int64_t Hdf5Store::max_overlay() const {
  for (auto it = overlay_.rbegin(); it != overlay_.rend(); ++it) {
    if (it->second) return it->first;
  }
  return -1;
}

void Hdf5Store::remember_id(std::int64_t id) {
  const auto o = overlay_.find(id);
  undo_.push(Undo{Undo::kId, id, 0, 0,
                  o == overlay_.end() ? std::nullopt : std::optional<std::optional<std::uint64_t>>(o->second), false,
                  appended_});
}

void Hdf5Store::undo_one(const Undo& u) {
  switch (u.kind) {
    case Undo::kId:
      if (u.old_overlay) {
        overlay_[u.id] = *u.old_overlay;
      } else {
        overlay_.erase(u.id);
      }
      break;
    case Undo::kLabel:
      if (u.had_label) {
        label_overlay_[u.row] = u.old_label;
      } else {
        label_overlay_.erase(u.row);
      }
      break;
    case Undo::kNewLabel: {
      const std::uint64_t rows = f_->committed()->rows;
      if (u.row - rows < new_labels_.size()) new_labels_[u.row - rows] = u.old_label;
      break;
    }
  }
}

void Hdf5Store::truncate_new_rows(std::uint64_t count) {
  if (count >= appended_) return;
  if (f_->ragged()) {
    // Shape 'any': rows already written past `count` stay in the file beyond where new rows start again, to
    // be written over by later rows or cut off when the transaction ends (trim_to): no re-read, and no chunk
    // alignment to keep (HDF5's filter writes partial chunks).
    pending_.resize(count > flushed_ ? new_offset(count) - new_offset(flushed_) : 0);
    flushed_ = std::min(flushed_, count);
    new_extents_.resize(count);
  } else if (count < flushed_) {
    settle();
    // Part of a written block is undone: keep the rows still wanted in the buffer and rewrite them later.
    const std::uint64_t keep_from = count / write_block_rows() * write_block_rows();
    std::vector<std::uint8_t> kept((count - keep_from) * shape().bytes());
    if (!kept.empty()) {
      f_->read(Dataset::images, f_->committed()->rows + keep_from, count - keep_from, kept.data(),
               f_->where(table_) + ": reading back rows");
    }
    pending_ = std::move(kept);
    flushed_ = keep_from;
  } else {
    pending_.resize((count - flushed_) * shape().bytes());
  }
  appended_ = count;
  new_labels_.resize(count);
  if (new_ids_.size() > count) {
    new_ids_.resize(count);
    new_pixel_terms_.resize(count);
  }
  ++generation_;
}

void Hdf5Store::flush_ragged_block() {
  if (pending_.empty()) return;
  const std::uint64_t first = new_offset(flushed_);
  const std::string what = f_->where(table_) + ": writing " + std::to_string(appended_ - flushed_) + " images";
  // Counted from the start of the transaction, as flush_block does.
  f_->ensure_space(first + pending_.size() - f_->committed()->bytes, what);
  f_->write_images(first, pending_.size(), pending_.data(), what);
  flushed_ = appended_;
  pending_.clear();
  ++generation_;  // cursors holding a block of the buffer must re-read
}

void Hdf5Store::flush_block() {
  if (f_->ragged()) return flush_ragged_block();
  const std::uint64_t n = pending_.size() / shape().bytes();
  if (n == 0) return;
  const std::string what = f_->where(table_) + ": writing " + std::to_string(n) + " images";
  // Counted from the start of the transaction: HDF5's chunk cache may not have written the earlier blocks yet.
  f_->ensure_space((flushed_ + n) * shape().bytes(), what);
  const std::uint64_t first = f_->committed()->rows + flushed_;
  if (direct_chunks()) {
    f_->resize_images(first + n, what);
    flush_block_direct(first, n, what);
  } else {
    f_->write_images(first, n, pending_.data(), what);
  }
  flushed_ += n;
  pending_.clear();
  ++generation_;  // cursors holding a block of the buffer must re-read
}

void Hdf5Store::flush_block_direct(std::uint64_t first, std::uint64_t n, const std::string& what) {
  const std::uint64_t chunk = f_->chunk_rows();
  const std::size_t bytes = shape().bytes();
  const std::uint64_t head = std::min(n, (chunk - first % chunk) % chunk);  // rows before the first chunk boundary
  const std::uint64_t whole = (n - head) / chunk;
  const std::uint64_t tail = n - head - whole * chunk;
  auto block = std::make_shared<std::vector<std::uint8_t>>(std::move(pending_));
  pending_ = {};
  // The partial chunks at either end through HDF5's filter (a later block completes them there too).
  if (head > 0) f_->write_images(first, head, block->data(), what);
  if (tail > 0) {
    f_->write_images(first + n - tail, tail, block->data() + (n - tail) * bytes, what);
  }
  if (!writer_) writer_ = std::make_unique<ChunkWriter>(pool(), f_->deflate());
  for (std::uint64_t k = 0; k < whole; ++k) {
    writer_->submit((first + head) / chunk + k, block, (head + k * chunk) * bytes, chunk * bytes);
  }
  writer_->write(*f_, false, what);  // those already done, while the rest compress
}

void Hdf5Store::commit_changes() {
  const std::string what = f_->where(table_) + ": commit";
  flush_block();
  settle();
  const Committed& old = *f_->committed();
  f_->ensure_space((old.rows + appended_) * (f_->ragged() ? 36 : 16), what);
  std::set<std::uint64_t> dirty;  // committed rows changed in place
  auto next = next_committed(old, dirty);
  f_->commit(std::move(next), dirty, what);
}

std::shared_ptr<Committed> Hdf5Store::next_committed(const Committed& old, std::set<std::uint64_t>& dirty) const {
  auto next = std::make_shared<Committed>();
  const std::uint64_t total = old.rows + appended_;
  next->rows = total;
  next->row_ids = old.row_ids;
  next->row_labels = old.row_labels;
  next->row_ids.resize(total, kTombstone);
  next->row_labels.resize(total, 0);
  next->index = old.index;
  const bool sums = f_->checksummed();
  if (sums) {
    next->row_checksums = old.row_checksums;
    next->row_checksums.resize(total, 0);
  }
  for (const auto& [row, label] : label_overlay_) {
    if (next->row_labels[row] == label) continue;
    // A relabel changes the checksum's label term only (checksum.hpp): the pixels are not read.
    if (sums) next->row_checksums[row] = relabelled(old.row_checksums[row], old.row_ids[row], old.row_labels[row], label);
    next->row_labels[row] = label;
    dirty.insert(row);
  }
  for (std::uint64_t i = 0; i < appended_; ++i) {
    next->row_labels[old.rows + i] = new_labels_[i];
    if (sums) next->row_checksums[old.rows + i] = new_pixel_terms_[i] ^ label_term(new_ids_[i], new_labels_[i]);
  }
  if (f_->ragged()) {
    // Shape 'any': the new rows' places and shapes; their checksums cover the shape too.
    next->row_offsets = old.row_offsets;
    next->row_dims = old.row_dims;
    next->row_offsets.reserve(total);
    next->row_dims.reserve(total);
    for (std::uint64_t i = 0; i < appended_; ++i) {
      const NewExtent& e = new_extents_[i];
      next->row_offsets.push_back(e.offset);
      next->row_dims.push_back(e.dims);
      if (sums) next->row_checksums[old.rows + i] ^= shape_term(*shape_of(e.dims));
    }
    next->bytes = new_offset(appended_);
  }
  // New rows are live only if the overlay still points at them; committed rows of changed ids die.
  for (const auto& [id, row] : overlay_) {
    if (const auto c = old.index.find(id); c != old.index.end() && (!row || *row != c->second)) {
      next->row_ids[c->second] = kTombstone;
      dirty.insert(c->second);
    }
    if (row && *row >= old.rows) next->row_ids[*row] = id;
    if (row) {
      next->index[id] = *row;
    } else {
      next->index.erase(id);
    }
  }
  return next;
}

void Hdf5Store::discard() {
  if (writer_) writer_->cancel();
  finish();  // end_transaction gives back the rows written past the committed count
}

void Hdf5Store::finish() {
  undo_.end();
  overlay_.clear();
  label_overlay_.clear();
  new_labels_.clear();
  new_ids_.clear();
  new_pixel_terms_.clear();
  new_extents_.clear();
  pending_.clear();
  appended_ = 0;
  flushed_ = 0;
  ++generation_;
  f_->end_transaction(table_);
}

}  // namespace hdf5

std::unique_ptr<Store> open_hdf5_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape", "compression", "chunk", "timeout", "threads", "verify"}, args);
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_store_shape(*text, "table " + table + ": shape");
  const hdf5::Compression compression = hdf5::parse_compression(table, parsed.get("compression").value_or("none"));
  const auto chunk = static_cast<std::uint64_t>(parsed.integer("chunk", 1, 1 << 20, 0));
  const auto timeout = timeout_argument(parsed);
  return std::make_unique<hdf5::Hdf5Store>(table, hdf5::H5File::open(table, parsed.require("path"), shape, compression, chunk, mode, timeout),
                                     timeout, threads_argument(parsed), verify_argument(parsed));
}

}  // namespace imgstore
