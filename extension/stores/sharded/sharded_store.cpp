// ShardedStore's reads and transactions (bulk writes: sharded_load.cpp). The commit protocol (the manifest is the
// single commit point):
//   0. every changed shard takes what its commit would wait for (a png_dir shard that replaces images: the lock
//      another program's reader may hold), or the commit fails here with SQLITE_BUSY and nothing written;
//   1. the manifest gets `pending`, the id ranges this transaction inserts, and `undo`, the number of rows it
//      changed or deleted, saved as they were in undo.journal (fsynced first; shard_journal.hpp) (generation + 1);
//   2. every shard that changed commits (each on its lane);
//   3. the manifest gets the new row counts and loses `pending` and `undo` (generation + 2): committed.
// A bulk load may commit shards early (sharded_load.cpp): each time after a manifest as in step 1, so its
// rows are pending, hidden and undone as those of step 2 are.
// Readers hide pending ids, so inserts appear in all shards at once; a commit that changes existing rows makes
// readers wait for step 3 (as SQLite's readers wait out a rollback-journal commit). A reader whose manifest
// generation changed while it opened its shard cursors opens them again. A writer killed between 1 and 3 leaves
// the manifest unfinished: whoever next opens, writes or waits on the table undoes it in every shard.

#include "sharded_store_impl.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "shard_folder.hpp"
#include "test_hooks.hpp"

namespace imgstore::sharded {

namespace {

// Rows of several shard cursors in ascending id order (a heap on the cursors' current ids), without the ids a
// commit in progress is inserting.
class MergeCursor final : public Cursor {
 public:
  // `open_in_txn`: counts the cursors open in the table's transaction (given only then).
  MergeCursor(std::vector<std::unique_ptr<Cursor>> cursors, std::vector<IdRange> hidden,
              std::shared_ptr<std::size_t> open_in_txn = nullptr)
      : cursors_(std::move(cursors)), hidden_(std::move(hidden)), open_in_txn_(std::move(open_in_txn)) {
    if (open_in_txn_) ++*open_in_txn_;
    for (std::size_t i = 0; i < cursors_.size(); ++i) {
      if (!cursors_[i]->at_end()) heap_.push_back(i);
    }
    std::make_heap(heap_.begin(), heap_.end(), later());
    skip_hidden();
  }
  ~MergeCursor() override {
    if (open_in_txn_) --*open_in_txn_;
  }
  MergeCursor(const MergeCursor&) = delete;
  MergeCursor& operator=(const MergeCursor&) = delete;
  bool at_end() const override { return heap_.empty(); }
  void next() override {
    advance();
    skip_hidden();
  }
  std::int64_t id() const override { return top().id(); }
  std::int64_t label() override { return top().label(); }
  std::span<const std::uint8_t> pixels() override { return top().pixels(); }
  std::span<const std::uint8_t> pixels_unchecked(PixelCheck& check) override { return top().pixels_unchecked(check); }
  std::optional<Shape> row_shape() override { return top().row_shape(); }

 private:
  struct Later {
    const MergeCursor* self;
    bool operator()(std::size_t a, std::size_t b) const { return self->cursors_[a]->id() > self->cursors_[b]->id(); }
  };
  Later later() const { return Later{this}; }
  Cursor& top() const { return *cursors_[heap_.front()]; }
  void advance() {
    if (heap_.empty()) return;
    std::pop_heap(heap_.begin(), heap_.end(), later());
    Cursor& c = *cursors_[heap_.back()];
    c.next();
    if (c.at_end()) {
      heap_.pop_back();
    } else {
      std::push_heap(heap_.begin(), heap_.end(), later());
    }
  }
  void skip_hidden() {
    while (!heap_.empty() && !hidden_.empty() && in_ranges(hidden_, top().id())) advance();
  }

  std::vector<std::unique_ptr<Cursor>> cursors_;
  const std::vector<IdRange> hidden_;
  const std::shared_ptr<std::size_t> open_in_txn_;
  std::vector<std::size_t> heap_;
};

constexpr std::size_t kAnyRowBytes = 4096;  // a guess at a row of a store of shape 'any', for read-ahead batches

}  // namespace

ShardedStore::ShardedStore(std::string table, std::string folder, Manifest manifest,
                           std::vector<std::unique_ptr<Store>> shards, unsigned threads,
                           std::chrono::milliseconds timeout)
    : table_(std::move(table)), folder_(std::move(folder)), manifest_(std::move(manifest)), shards_(std::move(shards)),
      timeout_(timeout), lanes_(std::min<unsigned>(threads, static_cast<unsigned>(shards_.size()))),
      journal_(table_, folder_, manifest_.shape),
      dirty_(shards_.size(), false), top_id_(shards_.size()), top_known_(shards_.size(), false),
      batches_(shards_.size()),
      shard_budget_(shard_budget(*shards_.front(), shards_.size())), uncommitted_(shards_.size(), 0),
      commit_at_(shards_.size(), 0) {
  reset_budgets();
}

std::vector<std::size_t> ShardedStore::all_shards() const {
  std::vector<std::size_t> all(shards_.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  return all;
}

void ShardedStore::rollback_shards() noexcept {
  try {
    on_lanes(all_shards(), [this](std::size_t i) { shards_[i]->rollback(); });
  } catch (...) {
  }
}

void ShardedStore::begin_shards() {
  const auto failed = on_lanes(all_shards(), [this](std::size_t i) { shards_[i]->begin(); });
  const std::exception_ptr first = first_of(failed);
  if (!first) return;
  std::vector<std::size_t> begun;
  for (std::size_t i = 0; i < failed.size(); ++i) {
    if (!failed[i]) begun.push_back(i);
  }
  on_lanes(begun, [this](std::size_t i) { rollback_quietly(*shards_[i]); });
  std::rethrow_exception(first);
}

ShardedStore::~ShardedStore() {
  if (in_txn_) rollback();
}

void ShardedStore::pause_read_aheads() noexcept {
  for (ShardReadAhead* scan : *read_aheads_) scan->pause();
}

std::uint64_t ShardedStore::count() {
  pause_read_aheads();
  drain();
  std::uint64_t n = 0;
  if (!in_txn_) {
    // The committed rows: a load committing shards early holds rows readers do not see yet.
    for (const auto& shard : read_manifest(folder_).value_or(manifest_).shards) n += shard.rows;
    return n;
  }
  for (const auto& shard : shards_) n += shard->count();
  return n;
}

std::optional<std::int64_t> ShardedStore::max_id() {
  pause_read_aheads();
  drain();
  std::optional<std::int64_t> best;
  for (const auto& shard : shards_) {
    const auto id = shard->max_id();
    if (id && (!best || *id > *best)) best = id;
  }
  return best;
}

// Cursors on every shard that see one committed state of the whole table: the manifest is read before and
// after they are opened, and if a commit moved it in between they are opened again.
template <typename Make>
std::unique_ptr<Cursor> ShardedStore::merged(Make&& make_cursors) {
  pause_read_aheads();  // a shard's store is used on one thread at a time
  drain();
  if (in_txn_) return std::make_unique<MergeCursor>(make_cursors(), std::vector<IdRange>{}, cursors_in_txn_);
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (;;) {
    const Manifest before = settled_manifest(deadline);
    auto cursors = make_cursors();
    const Manifest after = read_manifest(folder_).value_or(manifest_);
    if (before.generation == after.generation && after.undo == 0) {
      manifest_ = after;
      return std::make_unique<MergeCursor>(std::move(cursors), after.pending);
    }
    if (std::chrono::steady_clock::now() >= deadline) throw_commits_busy();
  }
}

void ShardedStore::throw_commits_busy() const {
  throw Error("table " + table_ + ": commits to the sharded table '" + folder_ + "' kept changing it for " +
                  std::to_string(timeout_.count()) + " ms; try again after they finish (if a writer died, the next " +
                  "process that opens the table with write access rolls its commit back)",
              ErrorKind::busy);
}

Manifest ShardedStore::settled_manifest(std::chrono::steady_clock::time_point deadline) {
  std::string cannot_recover;
  for (;;) {
    const Manifest m = read_manifest(folder_).value_or(manifest_);
    if (!m.unfinished()) return m;
    // A writer that died mid-commit: rolled back here if this process may write the folder.
    try {
      if (auto after = try_recover(table_, folder_, shards_); after && !after->unfinished()) return *after;
    } catch (const Error& e) {
      if (m.undo == 0) return m;  // inserts only: hidden, whether or not they can be removed
      cannot_recover = e.what();  // its writer may still be committing: wait as for any commit
    }
    if (m.undo == 0) return m;  // inserts only: their ids are hidden, no need to wait
    if (std::chrono::steady_clock::now() >= deadline) {
      if (cannot_recover.empty()) throw_commits_busy();
      throw Error("table " + table_ + ": a commit changing existing rows of '" + folder_ + "' has not finished after " +
                      std::to_string(timeout_.count()) + " ms, and if its writer died this process cannot roll it " +
                      "back (" + cannot_recover + ")",
                  ErrorKind::readonly);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

std::unique_ptr<Cursor> ShardedStore::scan(IdRange range) {
  // Outside a transaction each shard's rows are read ahead on its lane (nothing else runs there then).
  const bool ahead = lanes_.size() > 0 && !in_txn_;
  const std::size_t row_bytes = manifest_.shape.any ? kAnyRowBytes : manifest_.shape.bytes();
  return merged([&] {
    std::vector<std::unique_ptr<Cursor>> cursors;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      std::unique_ptr<Cursor> c = shards_[i]->scan(range);
      if (ahead) c = std::make_unique<ShardReadAhead>(std::move(c), lanes_.get(i), row_bytes, read_aheads_);
      cursors.push_back(std::move(c));
    }
    return cursors;
  });
}

std::unique_ptr<Cursor> ShardedStore::lookup(std::vector<std::int64_t> ids) {
  std::vector<std::vector<std::int64_t>> per_shard(shards_.size());
  for (const std::int64_t id : ids) per_shard[shard_of(id, shards_.size())].push_back(id);  // stays sorted
  return merged([&] {
    std::vector<std::unique_ptr<Cursor>> cursors;
    for (std::size_t i = 0; i < shards_.size(); ++i) {
      if (!per_shard[i].empty()) cursors.push_back(shards_[i]->lookup(per_shard[i]));
    }
    return cursors;
  });
}

void ShardedStore::remember(std::size_t shard, std::int64_t id) {
  if (journal_.knows(id)) return;
  const auto row = shards_[shard]->lookup({id});
  if (row->at_end()) {
    journal_.inserted(id);  // not there when the transaction began: undone by deleting it
  } else {
    const auto pixels = row->pixels();
    journal_.save(Image{id, row->label(), pixels, row->row_shape().value_or(manifest_.shape)});
  }
}












bool ShardedStore::set_label(std::int64_t id, std::int64_t label) {
  pause_read_aheads();
  drain();
  const std::size_t shard = shard_of(id, shards_.size());
  dirty_[shard] = true;
  remember(shard, id);
  return shards_[shard]->set_label(id, label);
}

bool ShardedStore::erase(std::int64_t id) {
  pause_read_aheads();
  drain();
  const std::size_t shard = shard_of(id, shards_.size());
  dirty_[shard] = true;
  remember(shard, id);
  return shards_[shard]->erase(id);
}

void ShardedStore::begin() {
  if (in_txn_) return;
  pause_read_aheads();  // the lanes are the writers' now
  writer_lock_ = lock_writer(table_, folder_, timeout_);
  try {
    if (auto current = read_manifest(folder_)) manifest_ = std::move(*current);
    if (manifest_.unfinished()) recover_unfinished(table_, folder_, manifest_, shards_);  // a writer died mid-commit
    begin_shards();
  } catch (...) {
    writer_lock_.release();
    throw;
  }
  in_txn_ = true;
  std::fill(dirty_.begin(), dirty_.end(), false);
  std::fill(top_known_.begin(), top_known_.end(), false);
  reset_budgets();
  undo_failed_ = false;
  journal_.end(true);
  levels_.clear();
}

void ShardedStore::commit_shards(const std::vector<std::size_t>& dirty, std::vector<std::exception_ptr>& failed) {
  // Shards that flush their files with syncfs (png_dir), which syncs the whole file system: once for all.
  const bool one_syncfs = shards_.front()->commit_syncs_file_system() && dirty.size() > 1;
  if (one_syncfs) {
    const Fd folder(::open(folder_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!folder || ::syncfs(folder.get()) != 0) throw_errno("table " + table_ + ": syncfs of '" + folder_ + "'", errno);
  }
  failed = on_lanes(dirty, [this, one_syncfs](std::size_t i) {
    if (one_syncfs) {
      shards_[i]->sync_after_syncfs();
    } else {
      shards_[i]->sync();
    }
    test_hooks::sharded_kill_point();
  });
  std::vector<std::size_t> broken;
  for (const std::size_t i : dirty) {
    if (failed[i]) broken.push_back(i);
  }
  // Its transaction must not linger into the next one.
  on_lanes(broken, [this](std::size_t i) { rollback_quietly(*shards_[i]); });
}

void ShardedStore::sync() {
  if (!in_txn_) return;
  if (undo_failed_) {
    throw Error("table " + table_ + ": this transaction rolled back to a savepoint but could not remove the rows "
                "its shards had committed early; it cannot commit: ROLLBACK (the next writer or reader of '" +
                folder_ + "' removes them)");
  }
  drain();
  std::vector<std::size_t> dirty;
  std::vector<std::size_t> clean;
  for (std::size_t i = 0; i < shards_.size(); ++i) (dirty_[i] ? dirty : clean).push_back(i);
  // SQLITE_BUSY here: nothing written, every shard still in the transaction, which stays open for COMMIT again.
  prepare_shards(dirty);
  // Nothing written: nothing to commit.
  on_lanes_or_throw(clean, [this](std::size_t i) { shards_[i]->rollback(); });
  if (dirty.empty()) {
    finish(true);
    return;
  }
  Manifest next = manifest_;
  next.pending = journal_.pending();
  next.undo = journal_.saved();
  // Any failure from here until the final manifest is written leaves this transaction to be undone from what is
  // on disk (by this table's next writer, reader or open): the shards roll back, the journal stays (the manifest
  // may name it), the writer lock goes.
  try {
    if (next.unfinished()) {
      ++next.generation;
      journal_.seal();
      write_manifest(folder_, next);  // step 1
    }
    test_hooks::sharded_kill_point();
    std::vector<std::exception_ptr> failed(shards_.size());
    commit_shards(dirty, failed);  // step 2
    const auto first_failure = std::find_if(failed.begin(), failed.end(), [](const auto& e) { return e != nullptr; });
    if (first_failure != failed.end()) {
      // Undone in every changed shard (those that committed, and any whose commit may still roll forward); the
      // shard's own error is the statement's, even if the undo fails too.
      std::vector<bool> changed(shards_.size(), false);
      for (const std::size_t i : dirty) changed[i] = true;
      try {
        undo_commit(folder_, shards_, changed, next.pending, next.undo);
      } catch (...) {
        throw_rolled_back(*first_failure);
      }
    }
    for (const std::size_t i : dirty) next.shards[i].rows = shards_[i]->count();
    next.pending.clear();
    next.undo = 0;
    ++next.generation;
    write_manifest(folder_, next);  // step 3: the commit point
    manifest_ = next;
    finish(true);
    test_hooks::sharded_kill_point();
    if (first_failure != failed.end()) throw_rolled_back(*first_failure);
  } catch (...) {
    if (in_txn_) {
      rollback_shards();
      finish(false);
    }
    throw;
  }
}

void ShardedStore::prepare_shards(const std::vector<std::size_t>& dirty) {
  // Once one shard is busy the commit fails: the shards not yet asked (without lanes, one after the other) are
  // not waited for as well.
  std::atomic<bool> busy = false;
  const std::exception_ptr failed = first_of(on_lanes(dirty, [this, &busy](std::size_t i) {
    if (busy) return;
    try {
      shards_[i]->prepare_commit();
    } catch (...) {
      busy = true;
      throw;
    }
  }));
  if (!failed) return;
  release_shards_prepared();
  std::rethrow_exception(failed);
}

void ShardedStore::release_shards_prepared() noexcept {
  for (const auto& shard : shards_) shard->release_prepared();
}

// A shard's commit failed and the transaction is undone in every shard. Never SQLITE_BUSY, even when the shard's
// was ("try COMMIT again"): after a failed COMMIT SQLite keeps a transaction open only on BUSY, and this one is
// gone, so a second COMMIT would report success for nothing.
void ShardedStore::throw_rolled_back(const std::exception_ptr& failure) const {
  try {
    std::rethrow_exception(failure);
  } catch (const Error& e) {
    throw Error("table " + table_ + ": a shard's commit failed, so the transaction was rolled back in every shard; " +
                    "run it again. The shard's error: " + e.what(),
                e.kind() == ErrorKind::busy ? ErrorKind::generic : e.kind());
  }
}

// Before sync() writes anything: the manifest never named this transaction's journal, which goes too.
// Shard by shard, under the table's writer lock (no sharded commit runs meanwhile); each shard's compaction is
// atomic on its own and keeps its rows, so the manifest does not change.
Compacted ShardedStore::compact() {
  if (in_txn_) throw Error("table " + table_ + ": cannot compact inside a transaction; COMMIT first");
  pause_read_aheads();
  const WriterLock lock = lock_writer(table_, folder_, timeout_);
  if (auto current = read_manifest(folder_)) manifest_ = std::move(*current);
  if (manifest_.unfinished()) recover_unfinished(table_, folder_, manifest_, shards_);  // a writer died mid-commit
  Compacted total;
  for (const auto& shard : shards_) {
    const Compacted one = shard->compact();
    total.rows += one.rows;
    total.bytes_before += one.bytes_before;
    total.bytes_after += one.bytes_after;
  }
  return total;
}

void ShardedStore::rollback() {
  if (!in_txn_) return;
  drain_quietly();
  rollback_shards();
  static_cast<void>(undo_checkpoints());  // if it fails, the manifest keeps them pending: hidden, then removed
  finish(true);
}

void ShardedStore::rollback_quietly(Store& shard) noexcept {
  try {
    shard.rollback();
  } catch (...) {
  }
}

void ShardedStore::finish(bool remove_journal) noexcept {
  release_shards_prepared();
  in_txn_ = false;
  checkpointed_ = false;
  journal_.end(remove_journal);
  levels_.clear();
  writer_lock_.release();
}

void ShardedStore::savepoint(int level) {
  if (!in_txn_) return;
  drain();
  on_lanes_or_throw(all_shards(), [&](std::size_t i) { shards_[i]->savepoint(level); });
  levels_.push_back({level, journal_.mark()});
}

void ShardedStore::release(int level) {
  if (!in_txn_) return;
  drain();
  on_lanes_or_throw(all_shards(), [&](std::size_t i) { shards_[i]->release(level); });
  while (!levels_.empty() && levels_.back().level >= level) levels_.pop_back();
}

void ShardedStore::rollback_to(int level) {
  if (!in_txn_) return;
  drain_quietly();
  std::fill(top_known_.begin(), top_known_.end(), false);  // rows rolled back may raise a shard's largest id
  while (!levels_.empty() && levels_.back().level > level) levels_.pop_back();
  const bool marked = !levels_.empty() && levels_.back().level == level;
  if (checkpointed_ && !marked) {
    // Back to before this table's first write, part of which early commits made permanent: undone, begun again.
    rollback_shards();
    if (!undo_checkpoints()) {
      undo_failed_ = true;  // the transaction can only roll back now (sync() refuses)
      throw Error("table " + table_ + ": ROLLBACK TO could not remove the rows the shards committed early; "
                  "ROLLBACK the transaction");
    }
    reset_budgets();
    journal_.rewind(0);
    begin_shards();
    return;
  }
  on_lanes_or_throw(all_shards(), [&](std::size_t i) { shards_[i]->rollback_to(level); });
  // Back to the savepoint's inserts, or to none: before this table's first write (the shards started over too).
  journal_.rewind(marked ? levels_.back().inserted : 0);
}

std::vector<std::string> ShardedStore::check(bool full) {
  pause_read_aheads();
  drain();
  std::vector<std::string> problems;
  const auto current = read_manifest(folder_).value_or(manifest_);
  if (current.unfinished()) problems.push_back("the manifest has an unfinished commit (pending ids or undo rows)");
  for (std::size_t i = 0; i < shards_.size(); ++i) {
    const std::string name = "shard " + current.shards[i].file + ": ";
    for (const auto& problem : shards_[i]->check(full)) problems.push_back(name + problem);
    const std::uint64_t rows = shards_[i]->count();
    if (!current.unfinished() && rows != current.shards[i].rows) {
      problems.push_back(name + std::to_string(rows) + " rows; the manifest says " + std::to_string(current.shards[i].rows));
    }
  }
  return problems;
}

}  // namespace imgstore::sharded
