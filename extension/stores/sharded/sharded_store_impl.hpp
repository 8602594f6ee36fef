// ShardedStore: the Store over N shard stores (sharded_store.hpp says what it is for). Internal header shared
// by sharded_store.cpp (reads, writes, transactions) and sharded_open.cpp (opening, creating).
#pragma once

#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "posix_file.hpp"
#include "shard_journal.hpp"
#include "shard_manifest.hpp"
#include "store.hpp"
#include "thread_pool.hpp"
#include "writer_lock.hpp"

namespace imgstore::sharded {

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
  void flush_shard(std::size_t shard);  // hands the shard's queued rows to its worker (after its last batch)
  void wait_shard(std::size_t shard);   // waits for the shard's worker; rethrows a failure
  void drain();               // waits for every queued write; rethrows the first failure
  void drain_quietly() noexcept;
  template <typename Make>
  std::unique_ptr<Cursor> merged(Make&& make_cursors);
  void commit_shards(const std::vector<std::size_t>& dirty, std::vector<std::exception_ptr>& failed);
  void finish(bool remove_journal) noexcept;

  const std::string table_;
  const std::string folder_;
  Manifest manifest_;  // the last one this connection read or wrote
  std::vector<std::unique_ptr<Store>> shards_;
  const std::chrono::milliseconds timeout_;
  LazyPool pool_;  // no pool with threads=1: every call on the calling thread
  bool in_txn_ = false;
  WriterLock writer_lock_;
  CommitJournal journal_;    // what this transaction inserted and the rows it changed, as they were before
  std::vector<bool> dirty_;  // per shard: written in this transaction
  std::vector<Level> levels_;
  std::vector<std::optional<std::int64_t>> top_id_;  // per shard: the largest id it has or was given (threads > 1)
  std::vector<bool> top_known_;
  std::vector<std::vector<Row>> batches_;        // rows queued per shard (threads > 1)
  std::vector<std::future<void>> in_flight_;     // per shard: its batch being written, if any
  std::exception_ptr failure_;                   // the first failed batch, rethrown by drain()
};

}  // namespace imgstore::sharded
