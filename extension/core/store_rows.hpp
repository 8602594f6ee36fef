// The rows one query reads from a store, and how the query keeps its place when its own connection writes
// the table meanwhile.
//
// SQLite leaves open which of a connection's later writes its open query sees; a native table's cursor keeps
// its place by key and reads on in the table as it is now (after COMMIT and ROLLBACK too). A backend's cursor
// holds things that do not survive the same connection's writes: pointers into an LMDB write transaction's
// pages (freed when a savepoint is released), an HDF5 store's view of its index, a png_dir reader's claim
// that the connection's own COMMIT would wait for, read-ahead work on a shard's lane. So before each write,
// commit, rollback and savepoint of a table, the table parks its open rows: they drop the backend cursor and
// keep the id they stand on. The next step opens the backend's rows again after that id, in the table's
// current state, as a native cursor would go on. A write made within a step (a function of the query that
// writes the table) may delete the row the query stands on: its columns then read as NULL, as a native
// table's do.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "store.hpp"

namespace imgstore {

class StoreRows {
 public:
  void lookup(Store& store, std::vector<std::int64_t> ids);  // these ids, ascending, unique
  void scan(Store& store, IdRange range);
  void close() noexcept;  // no rows (and nothing held)

  // Lets go of the backend's cursor, keeping the place. Never fails: whatever the cursor held is released.
  void park() noexcept;

  bool at_end() const { return !rows_ && !parked_at_ && !gone_; }
  void next();
  // The row it stands on, or null when a write of the connection deleted it meanwhile (a parked row is looked
  // up again first).
  Cursor* current();
  std::int64_t id();  // of the row it stands on, also when gone

 private:
  void reopen(std::int64_t from);  // rows with ids >= from
  void adopt(std::unique_ptr<Cursor> rows);
  void release() noexcept;  // of the backend's cursor

  Store* store_ = nullptr;
  bool by_ids_ = false;
  std::vector<std::int64_t> ids_;
  IdRange range_;
  std::unique_ptr<Cursor> rows_;           // null when parked or at the end; the next row when gone_
  std::optional<std::int64_t> parked_at_;  // the id it stood on when parked
  std::optional<std::int64_t> gone_;       // the id of the row it stands on, deleted since
};

}  // namespace imgstore
