// ShardedStore: the Store over N shard stores (sharded_store.hpp says what it is for). Internal header shared
// by sharded_store.cpp (reads, writes, transactions) and sharded_open.cpp (opening, creating).
#pragma once

#include <chrono>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "posix_file.hpp"
#include "shard_journal.hpp"
#include "shard_manifest.hpp"
#include "shard_read_ahead.hpp"
#include "store.hpp"
#include "thread_pool.hpp"
#include "writer_lock.hpp"

namespace imgstore::sharded {

// The failure of the first shard that failed, if any.
inline std::exception_ptr first_of(const std::vector<std::exception_ptr>& failed) {
  for (const auto& e : failed) {
    if (e) return e;
  }
  return nullptr;
}

class ShardedStore final : public Store {
 public:
  ShardedStore(std::string table, std::string folder, Manifest manifest, std::vector<std::unique_ptr<Store>> shards,
               unsigned threads, std::chrono::milliseconds timeout);
  ~ShardedStore() override;

  const Shape& shape() const override { return manifest_.shape; }
  std::uint64_t count() override;
  std::optional<std::int64_t> max_id() override;
  std::unique_ptr<Cursor> scan(IdRange range) override;
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override;
  void put(const Image& image, bool replace) override;
  bool set_label(std::int64_t id, std::int64_t label) override;
  bool erase(std::int64_t id) override;
  void begin() override;
  void sync() override;
  void rollback() override;
  std::vector<std::string> check(bool full) override;
  Compacted compact() override;
  void savepoint(int level) override;
  void release(int level) override;
  void rollback_to(int level) override;

 private:
  struct Row {
    std::int64_t id;
    std::int64_t label;
    bool replace;
    std::vector<std::uint8_t> pixels;
    Shape shape;
  };
  struct Level {
    int level;
    std::size_t inserted;  // journal_.mark() when the savepoint was opened
  };

  void remember(std::size_t shard, std::int64_t id);  // before a change to `id`: its state at the start, journaled
  void write_now(std::size_t shard, const Image& image, bool replace);
  // The manifest once no commit is changing existing rows (a dead writer's commit undone first), by `deadline`.
  Manifest settled_manifest(std::chrono::steady_clock::time_point deadline);
  [[noreturn]] void throw_commits_busy() const;
  [[noreturn]] void throw_rolled_back(const std::exception_ptr& failure) const;
  static void rollback_quietly(Store& shard) noexcept;
  void flush_shard(std::size_t shard);  // hands the shard's queued rows to its lane (after its last batch)
  // Queues work for the shard's lane; waits for the oldest queued work while too much is in flight.
  void send(std::size_t shard, std::function<void()> work);
  void await(std::future<void>& done) noexcept;  // a failure is kept in failure_
  void wait_shard(std::size_t shard);   // waits for the shard's queued work; rethrows a failure
  void drain();               // waits for every queued write; rethrows the first failure
  void drain_quietly() noexcept;
  template <typename Make>
  std::unique_ptr<Cursor> merged(Make&& make_cursors);
  // Before step 1: each changed shard takes what its commit would wait for (Store::prepare_commit); one that
  // cannot fails the commit with nothing written, and the others let go again.
  void prepare_shards(const std::vector<std::size_t>& dirty);
  void release_shards_prepared() noexcept;
  void commit_shards(const std::vector<std::size_t>& dirty, std::vector<std::exception_ptr>& failed);
  // Runs `work(i)` for each shard i of `which` on its lane (all at once), or here without lanes; the failures by
  // shard.
  template <typename Work>
  std::vector<std::exception_ptr> on_lanes(const std::vector<std::size_t>& which, Work&& work);
  template <typename Work>
  void on_lanes_or_throw(const std::vector<std::size_t>& which, Work&& work) {  // rethrows the first failure
    if (const std::exception_ptr failed = first_of(on_lanes(which, std::forward<Work>(work)))) {
      std::rethrow_exception(failed);
    }
  }
  void pause_read_aheads() noexcept;  // no scan reads ahead on the lanes after this (until a new one starts)
  std::vector<std::size_t> all_shards() const;
  void rollback_shards() noexcept;  // every shard's open transaction, on its lane
  void begin_shards();              // on their lanes; none left open if one fails
  // A bulk load of new rows into lmdb shards commits a shard whose uncommitted bytes pass its share of the
  // table's budget (LMDB holds a write transaction's pages in memory, up to 512 MiB per environment): the
  // manifest names the load's ids pending first, so readers do not see them and a crash removes them.
  void count_bytes(std::size_t shard, std::size_t bytes);
  void checkpoint(std::size_t shard);
  bool undo_checkpoints() noexcept;  // removes the rows early commits wrote (rollback of the load); false: failed
  void finish(bool remove_journal) noexcept;

  const std::string table_;
  const std::string folder_;
  Manifest manifest_;  // the last one this connection read or wrote
  std::vector<std::unique_ptr<Store>> shards_;
  const std::chrono::milliseconds timeout_;
  // One lane per worker thread, shard i on lane i % threads; none with threads=1 (every call on this thread).
  // Each shard's transaction is begun, written, committed and rolled back on its lane.
  Lanes lanes_;
  bool in_txn_ = false;
  WriterLock writer_lock_;
  CommitJournal journal_;    // what this transaction inserted and the rows it changed, as they were before
  std::vector<bool> dirty_;  // per shard: written in this transaction
  std::vector<Level> levels_;
  std::vector<std::optional<std::int64_t>> top_id_;  // per shard: the largest id it has or was given (threads > 1)
  std::vector<bool> top_known_;
  std::vector<std::vector<Row>> batches_;        // rows queued per shard (threads > 1)
  std::deque<std::pair<std::size_t, std::future<void>>> in_flight_;  // (shard, work) in the order queued
  std::exception_ptr failure_;                   // the first failed batch, rethrown by drain()
  std::shared_ptr<ReadAheads> read_aheads_ = std::make_shared<ReadAheads>();  // scans reading ahead now
  const std::size_t shard_budget_;               // uncommitted bytes a shard may hold in a bulk load (lmdb)
  std::vector<std::size_t> uncommitted_;         // per shard: bytes written since its transaction began
  // Per shard: the uncommitted bytes at which it commits early next. The first is staggered (shard s of N at
  // (s + 1) / N of the budget): rows reach every shard alike, so equal thresholds made all shards commit at
  // once, each lane's queue filled during its commits and the statement stopped making rows meanwhile.
  std::vector<std::size_t> commit_at_;
  void reset_budgets();
  bool checkpointed_ = false;                    // a shard committed early in this transaction
  bool undo_failed_ = false;                     // ROLLBACK TO could not undo them: the transaction cannot commit
  std::shared_ptr<std::size_t> cursors_in_txn_ = std::make_shared<std::size_t>(0);  // open in the transaction
};

// How many uncommitted bytes a shard like `shard` may hold in a bulk load before it commits early, for a table
// of `shards` shards (sharded_load.cpp).
std::size_t shard_budget(const Store& shard, std::size_t shards);

template <typename Work>
std::vector<std::exception_ptr> ShardedStore::on_lanes(const std::vector<std::size_t>& which, Work&& work) {
  std::vector<std::exception_ptr> failed(shards_.size());
  std::vector<std::pair<std::size_t, std::future<void>>> running;
  // Every task queued is waited for, even if queueing the next one fails: they refer to `work`.
  const auto wait_running = [&] {
    for (auto& [i, done] : running) {
      try {
        done.get();
      } catch (...) {
        failed[i] = std::current_exception();
      }
    }
  };
  try {
    for (const std::size_t i : which) {
      if (ThreadPool* lane = lanes_.get(i)) {
        running.emplace_back(i, lane->submit([&work, i] { work(i); }));
        continue;
      }
      try {
        work(i);
      } catch (...) {
        failed[i] = std::current_exception();
      }
    }
  } catch (...) {
    wait_running();
    throw;
  }
  wait_running();
  return failed;
}

}  // namespace imgstore::sharded
