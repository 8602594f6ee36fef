// The png_dir Store and its cursor, private to the backend (png_store.hpp is its public face). Declared here
// so several files can define them: png_store.cpp (open, reads, savepoints), png_write.cpp (INSERT: the
// encode window and the file writes), png_cursor.cpp (reads, decoding ahead on the pool) and png_commit.cpp
// (the commit protocol, recovery, the writer lock).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "busy.hpp"
#include "png_dir_format.hpp"
#include "posix_file.hpp"
#include "store.hpp"
#include "thread_pool.hpp"
#include "undo_log.hpp"
#include "writer_lock.hpp"

namespace imgstore::png_dir {

// Identity of labels.csv as last read, to notice commits by other connections and processes.
struct Stamp {
  ino_t inode = 0;
  off_t size = -1;
  std::int64_t mtime_ns = 0;
  friend bool operator==(const Stamp&, const Stamp&) = default;
};

Stamp stamp_of(const std::string& path);

class PngStore;

// Reads and decodes the image of `id` (its file `path` in `dir`, as of generation `as_of`: png_versions.hpp),
// checking it has the store's shape (what a cursor does per row). Returns the image's shape (on a store of
// shape 'any', whatever the file holds).
Shape read_image(const std::string& table, const std::string& dir, const std::string& path, std::int64_t id,
                 std::optional<std::uint64_t> as_of, const Shape& shape, std::vector<std::uint8_t>& file_bytes,
                 std::vector<std::uint8_t>& pixels);

class PngCursor final : public Cursor {
 public:
  // `pool` (threads > 1, and only outside this table's own transaction) decodes a window of rows ahead once
  // the statement has asked for pixels. `as_of`: the generation the statement reads (none inside the table's
  // own transaction, where no other writer commits).
  PngCursor(PngStore& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids, Fd read_lock,
            std::optional<std::uint64_t> as_of, ThreadPool* pool);
  ~PngCursor() override;
  PngCursor(const PngCursor&) = delete;
  PngCursor& operator=(const PngCursor&) = delete;
  bool at_end() const override { return ahead_.empty() && at_end_; }
  void next() override;
  std::int64_t id() const override { return ahead_.empty() ? walk_.id() : ahead_.front().ids[pos_]; }
  std::int64_t label() override { return ahead_.empty() ? walk_.value() : ahead_.front().labels[pos_]; }
  std::span<const std::uint8_t> pixels() override;
  std::optional<Shape> row_shape() override;

 private:
  struct Decoded {
    std::vector<std::uint8_t> pixels;
    Shape shape;
    std::exception_ptr error;  // this row's file could not be read: the statement that reaches it fails
  };
  // Rows read and decoded by one task: a few rows a task, so that handing rows between threads costs little
  // beside a decode.
  struct Batch {
    std::vector<std::int64_t> ids;
    std::vector<std::int64_t> labels;
    std::future<std::vector<Decoded>> decoded;
  };
  void step();
  void fill();  // tops the window up to its size

  PngStore& store_;
  const Fd read_lock_;         // holds as_of_ on .imgstore while the statement reads (empty in a transaction)
  const std::optional<std::uint64_t> as_of_;
  ThreadPool* const pool_;
  const std::size_t batch_rows_;  // rows a task reads and decodes
  IdWalk<std::int64_t> walk_;  // id -> label; ahead of the current row while decoding ahead
  bool at_end_ = false;        // the walk is done
  std::deque<Batch> ahead_;    // batches being decoded, the current row's first (empty when not decoding ahead)
  std::size_t pos_ = 0;        // the current row's place in ahead_.front()
  std::vector<Decoded> front_; // ahead_.front()'s rows, once its task is done
  bool front_ready_ = false;
  std::vector<std::uint8_t> file_bytes_;  // reused across rows
  std::vector<std::uint8_t> pixels_;
  Shape shape_;  // of pixels_
  bool decoded_ = false;
};

class PngStore final : public Store {
 public:
  PngStore(std::string table, std::string dir, std::optional<Shape> wanted, int level, std::chrono::milliseconds timeout,
           unsigned threads, OpenMode mode);
  ~PngStore() override;

  const Shape& shape() const override { return shape_; }
  const std::string& table() const { return table_; }
  const std::string& dir() const { return dir_; }

  std::uint64_t count() override;
  std::optional<std::int64_t> max_id() override;
  std::unique_ptr<Cursor> scan(IdRange range) override;
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override;

  // The first row with id >= from, or nullopt.
  std::optional<std::pair<std::int64_t, std::int64_t>> row_from(std::int64_t from) const;
  std::optional<std::int64_t> label_of(std::int64_t id) const;
  std::string file_of(std::int64_t id) const;

  // With threads > 1 the row is encoded on the pool and written later, in order (png_write.cpp).
  void put(const Image& image, bool replace) override;
  bool set_label(std::int64_t id, std::int64_t label) override;
  bool erase(std::int64_t id) override;
  std::vector<std::string> check(bool full) override;
  Compacted compact() override;

  void begin() override;
  void sync() override;
  void sync_after_syncfs() override;
  bool commit_syncs_file_system() const override { return true; }
  void prepare_commit() override;
  void release_prepared() noexcept override;
  void rollback() override;
  void savepoint(int level) override;
  void release(int level) override;
  void rollback_to(int level) override;

  const Shape& shape_of() const { return shape_; }
  // Writes the rows still being encoded, so the files are there to read (threads > 1).
  void flush_writes();

 private:
  struct Undo {
    std::int64_t id;
    std::optional<std::int64_t> label;
    std::optional<std::uint64_t> pending;
    bool inserted;
    bool deleted;
    bool full_rewrite;
    bool direct;  // this put created <id>.png: undoing it removes the file
  };

  // A row on its way to disk (threads > 1): encoded on the pool, written by the calling thread in put order.
  struct Outgoing {
    std::int64_t id;
    std::string path;
    bool direct;
    std::size_t undo_size;  // the undo log's size before this row's entry: a rollback below it forgets its failure
    std::future<std::vector<std::uint8_t>> png;
  };
  // A write that failed after its put() returned: the transaction cannot commit until it is rolled back past
  // that row (a statement's rollback, or the whole transaction).
  struct Broken {
    std::size_t undo_size;
    std::string message;
    ErrorKind kind;
  };

  std::string pending_dir() const { return dir_ + "/" + png_dir_format::pending_dir; }
  std::string pending_name(std::int64_t id, std::uint64_t seq) const;
  std::string csv_path() const { return dir_ + "/" + png_dir_format::labels_file; }
  std::string meta_path() const { return dir_ + "/" + png_dir_format::meta_file; }
  std::string commit_path() const { return dir_ + "/" + png_dir_format::commit_file; }
  std::string journal_path() const { return pending_dir() + "/" + png_dir_format::journal_file; }
  // A durable commit record not yet applied (a crash, or an apply that failed).
  bool commit_pending() const;

  // The transaction (png_store.cpp).
  void remember(std::int64_t id, bool direct);
  void undo_one(const Undo& u);

  // Writing files (png_write.cpp).
  // The journal of directly written files comes first: recovery removes those not listed in labels.csv.
  void write_image(std::int64_t id, const std::string& path, bool direct, std::span<const std::uint8_t> png);
  void write_front();      // the oldest row of the window
  void discard_writes();   // a rollback: waits for the encodes, writes nothing
  void throw_if_broken() const;

  // The commit protocol (png_commit.cpp).
  void end_txn();
  // Removes an unfinished transaction's files (its .pending directory, and the <id>.png files its journal
  // names that labels.csv does not list); never those of a commit record waiting to be applied.
  void remove_pending_files();
  void lock_writer();
  // The writer lock: flock on the directory, as every version of png_dir took it (a directory cannot be opened
  // for writing, which an OFD write lock needs).
  LockSpot writer_spot() const { return {dir_, LockSpot::Kind::directory}; }
  void make_pending_dir();  // .pending: marks a transaction that writes, for recovery
  // Writes labels.csv.pending and the commit record, then applies it.
  void commit_changes();
  bool files_synced_ = false;  // sync_after_syncfs(): the caller's syncfs made this transaction's files durable
  // Its second half: COMMIT.tmp into place (the commit point), then applied: under the exclusive lock when it
  // changes files readers may read (replacements, deletes, a rewritten labels.csv); a record that only appends
  // new ids to labels.csv is applied beside the readers, which read labels.csv as it was before it (load_csv).
  void commit_record(bool appends_only);
  // Would this transaction's commit record rename or delete files, or rewrite labels.csv (not appends only)?
  bool replaces_files() const;
  // .imgstore opened and holding lock_for_applying, or none when a reader held the lock longer than timeout_.
  Fd open_applying(const std::string& where) const;
  // The commit's SQLITE_BUSY when a reader of another program holds the reader lock: nothing was committed.
  Error readers_busy() const;
  Fd prepared_;  // prepare_commit(): .imgstore, holding lock_for_applying for a sharded commit
  // Finishes a durable commit record left by a failed apply or a crash, or says why it cannot.
  void finish_commit();
  // Applies dir/COMMIT; idempotent, so a crash at any point is finished by running it again.
  void roll_forward(int meta);  // meta: a descriptor of .imgstore holding the exclusive lock
  png_dir_format::CommitRecord read_record() const;
  // roll_forward's halves: what readers must not see halfway (renames, deletes, labels.csv; under the
  // exclusive lock), then what they need not wait for (syncs, then COMMIT and .pending removed).
  void apply_record(const png_dir_format::CommitRecord& record, int meta);
  void tidy_up();
  void prune_old_files();  // .old/<k> folders no statement needs (png_versions.hpp); at commit and at BEGIN
  // After a crash: finish a recorded commit, or drop an unfinished transaction's files. Only while no other
  // writer holds the directory (it may be in the middle of its own commit).
  void recover();

  // Opening and reading (png_store.cpp).
  // Starts a reading statement: brings labels.csv and the generation up to date under the reader lock, then
  // returns a descriptor holding the generation (png_dir_locks.hpp); none inside this table's own transaction
  // (the writer lock keeps other writers out).
  Fd read_state();
  // The generation a statement starting now reads: labels_gen_, or none inside the own transaction.
  std::optional<std::uint64_t> reading_as_of() const;
  // read_state's lock (on .imgstore, or on_directory: the directory's flock, shared, where there is no
  // .imgstore), or SQLITE_BUSY after timeout_.
  Fd lock_shared(bool& on_directory) const;
  bool read_meta_v1() const;  // .imgstore says version 1
  // COMMIT is there and no live writer holds the record lock (png_dir_locks.hpp): it must be finished.
  bool record_unapplied(const Fd& shared) const;
  // Our own stores have .imgstore; a directory made by other tools gets it with its first write, and a version
  // 1 store is marked version 2 (png_dir_format.hpp).
  void ensure_meta();
  bool meta_current_ = false;
  bool meta_v1_ = false;  // .imgstore said version 1 at open (an earlier build may write it): readers keep the lock
  void open(const std::optional<Shape>& wanted, OpenMode mode);
  [[noreturn]] void throw_shape_mismatch(const Shape& wanted) const;
  // labels.csv as of one committed state, also while a commit appends to it: up to the record's append point
  // while a commit record that appends is there; otherwise the whole file, read again if it grew meanwhile.
  void load_csv();
  // Where a commit record that only appends (COMMIT, present now) cuts labels.csv for readers; nullopt without
  // one (none, or gone meanwhile: then it has been applied and synced).
  std::optional<std::int64_t> appending_at() const;
  // Reloads labels.csv if another connection or process committed (never inside our own transaction).
  void refresh(bool force = false);

  const std::string table_;
  const std::string dir_;
  const int level_;
  const bool inspect_;  // imgstore_check: change nothing, not even to finish an interrupted commit
  Shape shape_;
  std::map<std::int64_t, std::int64_t> labels_;  // the rows as this connection sees them
  Stamp csv_stamp_;
  std::uint64_t labels_gen_ = 0;  // the generation labels_ belongs to (outside a transaction)
  // Cursors of this store open now: labels.csv is not reloaded under them (their walks read labels_), so a
  // statement that begins while another still reads sees the same state (the commit is seen once they end).
  std::size_t open_cursors_ = 0;
  friend class PngCursor;
  const std::chrono::milliseconds timeout_;  // the `timeout` argument: how long lock waits last
  // The open transaction.
  UndoLog<Undo> undo_;
  WriterLock lock_;  // for the whole transaction
  std::uint64_t seq_ = 0;
  std::map<std::int64_t, std::uint64_t> pending_;  // id -> its file in .pending
  std::set<std::int64_t> inserted_;                // ids new in this transaction
  std::set<std::int64_t> deleted_;                 // committed ids whose file goes at commit
  bool full_rewrite_ = false;                      // labels.csv must be rewritten, not appended to
  std::set<std::int64_t> direct_;                  // ids this transaction wrote as <id>.png (new ids)
  Fd journal_;                                     // .pending/new, once the transaction writes a new id
  std::size_t undo_size_ = 0;                      // entries in undo_
  std::vector<std::uint8_t> encoded_;  // reused PNG buffer
  // threads > 1: the pool (made at first use, by this process) and the rows in flight (at most window_limit_).
  LazyPool pool_;  // the `threads` argument (thread_pool.hpp)
  std::size_t window_limit_ = 0;
  std::deque<Outgoing> window_;
  std::optional<Broken> broken_;
};

}  // namespace imgstore::png_dir
