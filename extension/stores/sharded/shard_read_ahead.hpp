// A shard's scan read ahead on the shard's lane (a worker thread), so that a sharded table's full scan reads,
// checks and decodes its shards on every core while the calling thread only merges rows in id order.
//
// It starts at the first pixels() call (a statement that reads only ids and labels reads no pixels, as on one
// store); from then on a task on the lane reads a batch of rows (ids, labels, checked pixels copied into one
// buffer), two batches ahead. The shard's own cursor is only ever stepped by one thread at a time: its tasks
// run in order on its lane, and the calling thread takes it back (direct reads) only when none is running:
// after a read failed (the failing row is read again here, so the statement fails at that row with that
// error) or when the table is used otherwise (pause(): the shard's store must not be used on two threads at
// once, and a transaction's writes must not race a worker). A forked child (a DataLoader worker given the
// parent's open statement) takes the batches that were read before the fork and reads on by itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "store.hpp"
#include "thread_pool.hpp"

namespace imgstore::sharded {

class ShardReadAhead;

// The read-aheads open on one table, so that its begin() can pause them (calling thread only).
using ReadAheads = std::set<ShardReadAhead*>;

class ShardReadAhead final : public Cursor {
 public:
  ShardReadAhead(std::unique_ptr<Cursor> inner, ThreadPool* lane, std::size_t row_bytes,
                 std::shared_ptr<ReadAheads> registry);
  ~ShardReadAhead() override;

  bool at_end() const override { return ahead_ ? !has_row_ : inner_->at_end(); }
  void next() override;
  std::int64_t id() const override { return ahead_ ? row().id : inner_->id(); }
  std::int64_t label() override { return ahead_ ? row().label : inner_->label(); }
  std::span<const std::uint8_t> pixels() override;
  std::span<const std::uint8_t> pixels_unchecked(PixelCheck& check) override;
  std::optional<Shape> row_shape() override { return ahead_ ? row().shape : inner_->row_shape(); }

  // No task runs on the shard's cursor after this returns; rows already read are still handed out, then the
  // cursor reads on the calling thread.
  void pause() noexcept;

 private:
  struct Row {
    std::int64_t id = 0;
    std::int64_t label = 0;
    std::size_t offset = 0;
    std::size_t size = 0;
    std::optional<Shape> shape;
  };
  struct Batch {
    std::vector<Row> rows;
    std::vector<std::uint8_t> bytes;
    bool end = false;  // the shard's cursor is at its end after these rows
    bool failed = false;  // a read failed after these rows: the failing row is read again on the calling thread
    std::exception_ptr step_failed;  // stepping past the last row failed: the statement fails there
  };
  // What the tasks share with this cursor. `advance`: the shard's cursor still stands on the row the calling
  // thread read before reading ahead began (the first task steps past it).
  struct Shared {
    Cursor* inner = nullptr;
    std::atomic<bool> stop{false};
    bool advance = false;
  };

  const Row& row() const { return front_.rows[pos_]; }
  void submit();
  void load_front();  // the next batch with rows, or the end, or back to direct reads
  void to_direct();
  void wait_all() noexcept;  // in a forked child: only the tasks that ran before the fork
  bool lane_alive() const { return lane_->usable(); }
  static Batch read_batch(Shared& shared, std::size_t max_rows);

  std::unique_ptr<Cursor> inner_;
  ThreadPool* const lane_;
  const std::size_t batch_rows_;
  std::shared_ptr<ReadAheads> registry_;
  std::shared_ptr<Shared> shared_;
  bool ahead_ = false;       // rows come from batches (else straight from inner_)
  bool start_ = false;       // pixels() was asked for: read ahead from the next row on
  bool has_row_ = false;     // ahead: front_ holds the current row
  std::deque<std::future<Batch>> pending_;
  Batch front_;
  std::size_t pos_ = 0;
};

}  // namespace imgstore::sharded
