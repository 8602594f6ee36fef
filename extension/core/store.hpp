// The backend-neutral interface between the SQLite adapter (vtab.cpp) and the storage backends. Backends are
// plain C++ over their C library and know nothing of SQLite; they report errors by throwing imgstore::Error.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "error.hpp"
#include "shape.hpp"

namespace imgstore {

// CREATE VIRTUAL TABLE may create a missing store (given a shape); reconnecting to a table of a persistent
// database (xConnect) never does: a store that has gone is an error, not a new empty store. `inspect`
// (imgstore_check) also changes nothing at all: an interrupted commit is left as it is, for check() to report
// and imgstore_repair to recover.
enum class OpenMode { create_if_missing, must_exist, inspect };

// The error for a store that is not at `path` (relative paths resolve against the working directory, as
// SQLite's own ATTACH and fopen do; the message names the resolved path).
[[noreturn]] void throw_missing_store(const std::string& table, const std::string& path, OpenMode mode);

struct Image {
  std::int64_t id = 0;
  std::int64_t label = 0;
  std::span<const std::uint8_t> pixels;  // HWC, shape.bytes() long
  // This image's shape: the store's own for a one-shape store, the row's for a store of shape 'any'.
  Shape shape;
};

// What imgstore_compact() did to one store: the rows kept and its size on disk (allocated bytes) before and after.
struct Compacted {
  std::uint64_t rows = 0;
  std::uint64_t bytes_before = 0;
  std::uint64_t bytes_after = 0;
};

// Inclusive id range; a full scan is [0, INT64_MAX].
struct IdRange {
  std::int64_t lo = 0;
  std::int64_t hi = std::numeric_limits<std::int64_t>::max();
  bool empty() const noexcept { return lo > hi; }
};

// What pixels() would have checked, for a caller that checks the bytes itself later (the bulk reader, on
// another thread, in the copy it made): image_checksum(id, label, pixels) == expected, or for a row of the
// open transaction pixels_term(id, pixels) == expected (checksum.hpp); none when pixels() checked them already
// its own way (a PNG's CRCs) or checks nothing (verify=0, a format without checksums).
struct PixelCheck {
  enum class Kind { none, image, pixels };
  Kind kind = Kind::none;
  std::uint64_t expected = 0;
  std::int64_t label = 0;  // the label the checksum was made with (kind image)
};

// One row copied by Cursor::copy_rows.
struct RowCopy {
  std::int64_t id = 0;
  std::int64_t label = 0;
  PixelCheck check;
};

// Rows in ascending id order. Views returned stay valid until next() or the cursor's destruction.
class Cursor {
 public:
  virtual ~Cursor() = default;
  virtual bool at_end() const = 0;
  virtual void next() = 0;
  virtual std::int64_t id() const = 0;
  virtual std::int64_t label() = 0;
  virtual std::span<const std::uint8_t> pixels() = 0;  // may decode on demand (PNG): only when asked
  // This row's shape where rows differ (a store of shape 'any', an image folder); nullopt where every row has
  // the store's or source's one shape, which its owner knows.
  virtual std::optional<Shape> row_shape() { return std::nullopt; }
  // pixels() without its checksum check, and what the check would have been: the caller must make it.
  virtual std::span<const std::uint8_t> pixels_unchecked(PixelCheck& check) {
    check = {};
    return pixels();
  }
  // Copies this row's pixels and those of up to max_rows - 1 rows after it into `out`, one after another,
  // unchecked (each row's check in `rows`), and moves past them: the bulk reader's copy. A backend that can
  // read a run of rows straight into `out` does (hdf5: one H5Dread, not a read into a block and a copy out of
  // it); this one copies one row. Call only when not at_end(); returns the rows copied (at least 1).
  virtual std::size_t copy_rows(std::uint8_t* out, std::size_t max_rows, std::vector<RowCopy>& rows);
  // True when this cursor and `other` read the same committed state and share nothing mutable, so that the
  // two may be stepped on two threads at once (the bulk reader splits a batch of random reads so); false
  // when that is not known (the default), or either reads a transaction's changes.
  virtual bool same_snapshot(const Cursor& /*other*/) const { return false; }
};

// The walk shared by cursors over a store kept as an ordered id -> V map: either the given ids (sorted, those
// present) or the ids in a range, in ascending order. It finds its place again by id on every step, so it
// survives changes to the map while it is open. The store supplies find(id) -> optional<V> and
// first_from(id) -> optional<pair<id, V>> (the first id >= id).
template <typename V>
class IdWalk {
 public:
  IdWalk(IdRange range, std::vector<std::int64_t> ids, bool by_ids)
      : range_(range), ids_(std::move(ids)), by_ids_(by_ids) {}

  // Moves to the next row; false at the end.
  template <typename Find, typename FirstFrom>
  bool step(Find&& find, FirstFrom&& first_from) {
    if (by_ids_) {
      while (next_index_ < ids_.size()) {
        id_ = ids_[next_index_++];
        if (const auto value = find(id_)) {
          value_ = *value;
          return true;
        }
      }
      return false;
    }
    if (started_ && id_ >= range_.hi) return false;
    const auto found = first_from(started_ ? id_ + 1 : range_.lo);
    started_ = true;
    if (!found || found->first > range_.hi) return false;
    id_ = found->first;
    value_ = found->second;
    return true;
  }

  bool by_ids() const { return by_ids_; }
  const IdRange& range() const { return range_; }
  // By ids: the ids the walk will ask find() for after the one it is on, in order.
  std::span<const std::int64_t> ids_ahead() const {
    return std::span<const std::int64_t>(ids_).subspan(std::min(next_index_, ids_.size()));
  }

  std::int64_t id() const { return id_; }
  const V& value() const { return value_; }

 private:
  const IdRange range_;
  const std::vector<std::int64_t> ids_;
  const bool by_ids_;
  std::size_t next_index_ = 0;
  bool started_ = false;
  std::int64_t id_ = -1;
  V value_{};
};

// The isolation contract, the same for every backend (the differential tester and tests/isolation_test.py
// check it):
//  - A cursor (one statement's reading) sees one committed state, taken when the cursor is created, plus its
//    own table's transaction's changes. A commit by another connection or process while it reads is not seen
//    at all, neither halfway nor after: lmdb reads an LMDB read transaction; hdf5 a published, immutable
//    committed state (rows a commit never overwrites); png_dir holds a shared lock that keeps the apply of a
//    commit that replaces or deletes images waiting until the statement is done, and reads the labels of the
//    state it began with (a commit of new ids only is applied beside it: it changes no file the statement reads).
//  - The next statement sees the last committed state (png_dir: once no statement of the table is still
//    reading, as SQLite's own connections keep one read snapshot while any statement is active).
//  - One writer at a time per store: a second waits (bounded, busy.hpp), then gets ErrorKind::busy.
//  - A table that only reads does not write its store's files (no lock files left behind, no repairs, no
//    changed modification time), with one exception every database makes: a crash's unfinished commit is
//    recovered (rolled back or forward) by whoever opens the store next.
class Store {
 public:
  virtual ~Store() = default;

  virtual const Shape& shape() const = 0;
  // Number of rows, or an estimate where exact is expensive: used for query planning.
  virtual std::uint64_t count() = 0;
  virtual std::optional<std::int64_t> max_id() = 0;

  virtual std::unique_ptr<Cursor> scan(IdRange range) = 0;
  // `ids` sorted ascending, unique; ids not in the store are skipped.
  virtual std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) = 0;

  // Insert; an existing id is Error(constraint) unless `replace`, which overwrites label and pixels.
  virtual void put(const Image& image, bool replace) = 0;
  // Both return false when the id does not exist.
  virtual bool set_label(std::int64_t id, std::int64_t label) = 0;
  virtual bool erase(std::int64_t id) = 0;

  // One backend transaction per SQLite transaction. sync() commits: makes the transaction durable and
  // reports any failure (SQLite ignores errors from xCommit and calls xSync before it, so the work is here).
  virtual void begin() = 0;
  virtual void sync() = 0;
  // sync() for a caller that has just made every file this transaction wrote durable itself: one syncfs for the
  // shards of a sharded png_dir table, which share a file system, rather than one per shard. The default syncs.
  virtual void sync_after_syncfs() { sync(); }
  // What a sharded table needs to know of its shards' backend: whether a write transaction holds its pages in
  // memory until it commits (LMDB: up to 512 MiB; a bulk load into many shards then commits them early), and
  // whether a commit makes its files durable with syncfs (png_dir: one syncfs serves every shard).
  virtual bool keeps_transaction_in_memory() const { return false; }
  virtual bool commit_syncs_file_system() const { return false; }
  // A sharded commit, before it writes anything: takes now what this store's commit would wait for (png_dir:
  // the lock a commit that replaces or deletes images applies under, which another program's reader may hold),
  // so that a busy shard fails the COMMIT with SQLITE_BUSY and nothing written (the transaction stays open), and
  // so that undoing this shard's replacements and deletions, if another shard's commit fails, cannot be refused.
  // Held, across this and the store's next transactions, until release_prepared().
  virtual void prepare_commit() {}
  virtual void release_prepared() noexcept {}
  virtual void rollback() = 0;
  // The problems found in the store's structure and, with `full`, in every image (each read and checked);
  // empty when the store is sound. Never throws for a problem it can describe.
  virtual std::vector<std::string> check(bool full) = 0;

  // imgstore_compact: rewrites the store without the space of deleted, replaced or rolled-back rows, atomically
  // (a crash leaves the old store or the new one) and beside readers, in a transaction of its own (waiting for
  // the writer like any writer). Refused inside this table's transaction.
  virtual Compacted compact() = 0;

  // Nested savepoints inside a transaction (SQLite's statement and SAVEPOINT levels).
  virtual void savepoint(int level) = 0;
  virtual void release(int level) = 0;
  virtual void rollback_to(int level) = 0;
};

}  // namespace imgstore
