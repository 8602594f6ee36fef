// What one transaction of a sharded table changed, kept so that a commit interrupted between its shards can be
// undone in every shard (by a failed shard's writer, or after a crash by whoever opens the table next):
//   - the ids it inserted (new ids: the manifest's `pending` ranges; undone by deleting them), and
//   - `undo.journal` in the table's folder: each row it replaced, relabelled or deleted, as it was when the
//     transaction began (undone by writing it back). Appended as rows are first touched, fsynced before the
//     manifest names it; only rows that existed go there, so a bulk load writes no journal.
#pragma once

#include <cstdint>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "posix_file.hpp"
#include "shard_manifest.hpp"
#include "store.hpp"

namespace imgstore::sharded {

inline constexpr const char* kJournalName = "undo.journal";

class CommitJournal {
 public:
  CommitJournal(std::string table, std::string folder, const Shape& shape);

  // Forgets the transaction (a new one begins with nothing touched). With `remove_file` the journal file goes
  // too: the manifest does not name it (the commit finished, or never got that far); without, it stays for the
  // recovery of a manifest that does. A new transaction's first saved row truncates it.
  void end(bool remove_file) noexcept;
  // Whether `id` was inserted or saved by this transaction: its state when the transaction began is known.
  bool knows(std::int64_t id) const { return inserted_set_.contains(id) || saved_.contains(id); }
  void inserted(std::int64_t id);
  void save(const Image& before);  // appends a row as it was when the transaction began
  std::size_t mark() const { return inserted_.size(); }
  void rewind(std::size_t mark);  // ROLLBACK TO: inserts after `mark` are gone (saved rows stay: still right)

  std::vector<IdRange> pending() const { return inserted_set_.ranges(); }
  std::uint64_t saved() const { return saved_count_; }
  void seal();  // flushes and fsyncs the journal file: then the manifest may name it

 private:
  void flush();

  const std::string table_;
  const std::string path_;
  const Shape shape_;  // the table's: a row's shape is in the journal only for 'any'
  std::vector<std::int64_t> inserted_;  // in order, for rewind
  IdRangeSet inserted_set_;
  IdRangeSet saved_;
  std::uint64_t saved_count_ = 0;
  Fd file_;
  std::vector<std::uint8_t> buffer_;
  bool broken_ = false;  // a write failed part-way: the file no longer matches the rows counted
};

// Puts the shards that `which` selects back as they were before an unfinished commit, one transaction per shard:
// the pending ids are deleted and the journal's first `saved` rows written back. Throws if a shard cannot be
// written (the shards not yet committed are rolled back); idempotent, so running it again finishes the job.
void undo_commit(const std::string& folder, const std::vector<std::unique_ptr<Store>>& shards,
                 const std::vector<bool>& which, const std::vector<IdRange>& pending, std::uint64_t saved);

// Undoes the unfinished commit `m` describes in every shard, then writes the manifest without it (one generation
// on, the shards' row counts) and removes the journal. The caller holds the writer lock.
void recover_unfinished(const std::string& table, const std::string& folder, Manifest& m,
                        const std::vector<std::unique_ptr<Store>>& shards);

// When no writer holds the table's lock (its writer died mid-commit) and the manifest is unfinished: takes the
// lock, recovers, and returns the manifest after. Nothing (nullopt) while a writer holds the lock; an Error
// naming the table when this process may not write the folder or the recovery fails.
std::optional<Manifest> try_recover(const std::string& table, const std::string& folder,
                                    const std::vector<std::unique_ptr<Store>>& shards);

}  // namespace imgstore::sharded
