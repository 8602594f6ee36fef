// ShardedStore's bulk writes (the commit protocol and reads are in sharded_store.cpp). With threads > 1 rows
// queue per shard and each shard's batches are written on its lane; a load of new rows into shards that keep
// their transaction in memory (lmdb) commits a shard early once it holds its share of the table's budget,
// after the manifest names the load's ids pending (so readers do not see them, and a crash or a rollback
// removes them, as for any unfinished commit).

#include "sharded_store_impl.hpp"

#include <algorithm>
#include <limits>

#include "shard_folder.hpp"
#include "test_hooks.hpp"

namespace imgstore::sharded {

namespace {

constexpr std::size_t kBatchRows = 64;      // rows handed to a shard's lane at once
// Batches (and early commits) queued on the lanes at once, an equal share per lane: a lane's share must outlast
// one early commit (about 0.1 s for 48 MiB) or the statement stops making rows while the lane commits.
constexpr std::size_t kMostInFlight = 512;

// A bulk load into lmdb shards holds at most this many uncommitted row bytes per table (LMDB keeps about 4 KiB
// of dirty pages a 3 KiB row): as much memory as one lmdb store's own limit of 2^17 dirty pages.
constexpr std::size_t kLoadBudget = std::size_t{384} << 20;
constexpr std::size_t kLeastShardBudget = std::size_t{8} << 20;  // fewer, larger commits on many shards

}  // namespace

std::size_t shard_budget(const Store& shard, std::size_t shards) {
  // Other shards write their rows out as they go: their memory is bounded already.
  if (!shard.keeps_transaction_in_memory()) return std::numeric_limits<std::size_t>::max();
  if (const std::size_t test = test_hooks::shard_budget()) return std::max<std::size_t>(1, test / shards);
  return std::max(kLeastShardBudget, kLoadBudget / shards);
}

void ShardedStore::reset_budgets() {
  std::fill(uncommitted_.begin(), uncommitted_.end(), 0);
  for (std::size_t s = 0; s < commit_at_.size(); ++s) commit_at_[s] = shard_budget_ / commit_at_.size() * (s + 1);
}

// A write in statement order, after the shard's queued rows: a duplicate id fails at its own row, as on one store.
void ShardedStore::write_now(std::size_t shard, const Image& image, bool replace) {
  if (replace) remember(shard, image.id);
  shards_[shard]->put(image, replace);
  if (!replace && !journal_.knows(image.id)) journal_.inserted(image.id);
  count_bytes(shard, image.pixels.size());
}

void ShardedStore::count_bytes(std::size_t shard, std::size_t bytes) {
  uncommitted_[shard] += bytes;
  // Only a load of new rows outside any savepoint: its undo is deleting the pending ids, and no savepoint can
  // ask for a state that a shard's commit has made permanent. Not while a cursor of this transaction is open:
  // it reads the shard's write transaction, which a commit ends.
  if (uncommitted_[shard] >= commit_at_[shard] && levels_.empty() && journal_.saved() == 0 && *cursors_in_txn_ == 0) {
    checkpoint(shard);
  }
}

void ShardedStore::checkpoint(std::size_t shard) {
  if (lanes_.size() > 0) flush_shard(shard);  // its rows go before its commit on its lane
  Manifest next = manifest_;
  next.pending = journal_.pending();  // every id this load has written so far (some still uncommitted)
  ++next.generation;
  write_manifest(folder_, next);
  manifest_ = std::move(next);
  checkpointed_ = true;
  uncommitted_[shard] = 0;
  commit_at_[shard] = shard_budget_;
  test_hooks::sharded_kill_point();
  Store* store = shards_[shard].get();
  auto commit = [store] {
    store->sync();
    test_hooks::sharded_kill_point();
    store->begin();
  };
  if (lanes_.size() > 0) {
    send(shard, commit);  // the calling thread goes on with the other shards' rows
  } else {
    commit();
  }
}

bool ShardedStore::undo_checkpoints() noexcept {
  if (!checkpointed_) return true;
  try {
    recover_unfinished(table_, folder_, manifest_, shards_);  // deletes the pending ids in every shard
    checkpointed_ = false;
    return true;
  } catch (...) {
    // Left as a dead writer's commit is: the manifest keeps the ids pending (hidden), and the next process
    // that opens, writes or waits on the table removes them. This transaction must not commit (sync()).
    return false;
  }
}

void ShardedStore::put(const Image& image, bool replace) {
  if (failure_) drain();
  const std::size_t shard = shard_of(image.id, shards_.size());
  dirty_[shard] = true;
  if (lanes_.size() == 0) {
    write_now(shard, image, replace);
    return;
  }
  // A bulk INSERT: rows queue per shard and each shard's batch is written on a worker, one writer per shard.
  // Only rows that cannot exist yet queue (an id above every id the shard has or was given in this
  // transaction); any other row waits for its shard's worker and is written here.
  std::optional<std::int64_t>& top = top_id_[shard];
  if (!top_known_[shard]) {
    top = shards_[shard]->max_id();  // nothing queued for this shard yet: its worker is idle
    top_known_[shard] = true;
  }
  if (top && image.id <= *top) {
    flush_shard(shard);
    wait_shard(shard);
    write_now(shard, image, replace);
    return;
  }
  top = image.id;
  journal_.inserted(image.id);
  batches_[shard].push_back({image.id, image.label, replace, {image.pixels.begin(), image.pixels.end()}, image.shape});
  if (batches_[shard].size() >= kBatchRows) flush_shard(shard);
  count_bytes(shard, image.pixels.size());
}

void ShardedStore::await(std::future<void>& done) noexcept {
  try {
    done.get();
  } catch (...) {
    if (!failure_) failure_ = std::current_exception();
  }
}

void ShardedStore::wait_shard(std::size_t shard) {
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (it->first == shard) {
      await(it->second);
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
}

void ShardedStore::send(std::size_t shard, std::function<void()> work) {
  in_flight_.emplace_back(shard, lanes_.get(shard)->submit(std::move(work)));
  while (!in_flight_.empty() &&
         in_flight_.front().second.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    await(in_flight_.front().second);  // done: off the queue
    in_flight_.pop_front();
  }
  // Bounded per lane: a lane blocked in an early commit's fdatasync makes the statement wait only once its own
  // queue is full, while the other lanes go on taking rows.
  const std::size_t lanes = lanes_.size();
  const auto on_lane = [&](const auto& queued) { return queued.first % lanes == shard % lanes; };
  if (static_cast<std::size_t>(std::count_if(in_flight_.begin(), in_flight_.end(), on_lane)) <= kMostInFlight / lanes) {
    return;
  }
  const auto oldest = std::find_if(in_flight_.begin(), in_flight_.end(), on_lane);
  await(oldest->second);
  in_flight_.erase(oldest);
}

void ShardedStore::flush_shard(std::size_t shard) {
  if (batches_[shard].empty()) return;
  auto batch = std::make_shared<std::vector<Row>>(std::move(batches_[shard]));
  batches_[shard].clear();
  Store* store = shards_[shard].get();
  send(shard, [store, batch] {
    for (const Row& row : *batch) store->put(Image{row.id, row.label, row.pixels, row.shape}, row.replace);
  });
}

void ShardedStore::drain() {
  if (lanes_.size() > 0) {
    for (std::size_t i = 0; i < shards_.size(); ++i) flush_shard(i);
    for (auto& [shard, done] : in_flight_) await(done);
    in_flight_.clear();
  }
  if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
}

void ShardedStore::drain_quietly() noexcept {
  try {
    drain();
  } catch (...) {
  }
  for (auto& batch : batches_) batch.clear();
}

}  // namespace imgstore::sharded
