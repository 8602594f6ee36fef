#include "shard_read_ahead.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace imgstore::sharded {

namespace {

constexpr std::size_t kBatchBytes = std::size_t{256} << 10;  // pixels a task reads; two such per shard in flight
constexpr std::size_t kMostBatchRows = 64;
constexpr std::size_t kWindow = 2;  // batches in flight per shard

}  // namespace

ShardReadAhead::ShardReadAhead(std::unique_ptr<Cursor> inner, ThreadPool* lane, std::size_t row_bytes,
                               std::shared_ptr<ReadAheads> registry)
    : inner_(std::move(inner)), lane_(lane),
      batch_rows_(std::clamp<std::size_t>(kBatchBytes / std::max<std::size_t>(row_bytes, 1), 1, kMostBatchRows)),
      registry_(std::move(registry)), shared_(std::make_shared<Shared>()) {
  shared_->inner = inner_.get();
  registry_->insert(this);
}

ShardReadAhead::~ShardReadAhead() {
  wait_all();
  registry_->erase(this);
}

void ShardReadAhead::wait_all() noexcept {
  shared_->stop = true;
  const bool alive = lane_ != nullptr && lane_alive();
  for (auto& batch : pending_) {
    // In a forked child the lane has no thread: a task queued before the fork never runs (none was running:
    // fork waits for running jobs, thread_pool.cpp).
    if (alive) batch.wait();
  }
}

void ShardReadAhead::pause() noexcept {
  wait_all();
  start_ = false;
}

ShardReadAhead::Batch ShardReadAhead::read_batch(Shared& shared, std::size_t max_rows) {
  Batch batch;
  if (shared.stop) return batch;  // skipped: the cursor stays where it is
  Cursor& c = *shared.inner;
  try {
    if (shared.advance) {
      shared.advance = false;
      c.next();
    }
  } catch (...) {
    batch.step_failed = std::current_exception();
    shared.stop = true;
    return batch;
  }
  while (batch.rows.size() < max_rows && batch.bytes.size() < kBatchBytes) {
    try {
      if (c.at_end()) break;
      Row r{c.id(), c.label(), batch.bytes.size(), 0, std::nullopt};
      const std::span<const std::uint8_t> px = c.pixels();  // checked here, on the lane
      r.size = px.size();
      r.shape = c.row_shape();
      batch.bytes.insert(batch.bytes.end(), px.begin(), px.end());
      batch.rows.push_back(r);
    } catch (...) {
      batch.failed = true;  // this row is read again on the calling thread, which then gets the error
      shared.stop = true;
      return batch;
    }
    try {
      c.next();
    } catch (...) {
      batch.step_failed = std::current_exception();  // after this batch's rows: the row is not read twice
      shared.stop = true;
      return batch;
    }
  }
  try {
    batch.end = c.at_end();
  } catch (...) {
    batch.failed = true;
    shared.stop = true;
  }
  return batch;
}

void ShardReadAhead::submit() {
  pending_.push_back(lane_->submit([shared = shared_, rows = batch_rows_] { return read_batch(*shared, rows); }));
}

void ShardReadAhead::to_direct() {
  // A read failed, the table paused reading ahead, or this is a forked child: the calling thread goes on from
  // where the tasks stopped.
  wait_all();
  pending_.clear();
  ahead_ = false;
  has_row_ = false;
  if (shared_->advance) {
    shared_->advance = false;
    inner_->next();
  }
}

void ShardReadAhead::load_front() {
  has_row_ = false;
  while (!pending_.empty()) {
    if (!lane_alive() &&
        pending_.front().wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      shared_->stop = true;
      to_direct();  // a forked child: the rest was never read
      return;
    }
    Batch batch = pending_.front().get();
    pending_.pop_front();
    if (!batch.end && !batch.failed && !batch.step_failed && !shared_->stop) submit();  // keeps the window full
    if (!batch.rows.empty() || batch.step_failed) {
      front_ = std::move(batch);
      pos_ = 0;
      if (front_.rows.empty()) std::rethrow_exception(std::exchange(front_.step_failed, nullptr));
      has_row_ = true;
      return;
    }
    if (batch.end) {
      wait_all();  // tasks queued past the end find nothing
      pending_.clear();
      return;  // at the end
    }
  }
  to_direct();
}

void ShardReadAhead::next() {
  if (ahead_) {
    if (++pos_ < front_.rows.size()) return;
    has_row_ = false;
    if (front_.step_failed) std::rethrow_exception(std::exchange(front_.step_failed, nullptr));
    if (front_.end) return;
    load_front();
    return;
  }
  if (!start_ || lane_ == nullptr || shared_->stop || !lane_alive()) {
    inner_->next();
    return;
  }
  // From the next row on, read ahead: the first task steps past the row the calling thread just read.
  ahead_ = true;
  shared_->advance = true;
  for (std::size_t i = 0; i < kWindow; ++i) submit();
  load_front();
}

std::span<const std::uint8_t> ShardReadAhead::pixels() {
  if (ahead_) return {front_.bytes.data() + row().offset, row().size};
  start_ = true;
  return inner_->pixels();
}

std::span<const std::uint8_t> ShardReadAhead::pixels_unchecked(PixelCheck& check) {
  if (ahead_) {
    check = {};  // checked on the lane
    return {front_.bytes.data() + row().offset, row().size};
  }
  return inner_->pixels_unchecked(check);
}

}  // namespace imgstore::sharded
