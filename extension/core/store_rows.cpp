#include "store_rows.hpp"

#include <algorithm>
#include <utility>

#include "error.hpp"
#include "id_bounds.hpp"

namespace imgstore {

void StoreRows::lookup(Store& store, std::vector<std::int64_t> ids) {
  close();
  store_ = &store;
  by_ids_ = true;
  ids_ = std::move(ids);
  adopt(store.lookup(ids_));
}

void StoreRows::scan(Store& store, IdRange range) {
  close();
  store_ = &store;
  by_ids_ = false;
  range_ = range;
  reopen(range.lo);
}

void StoreRows::close() noexcept {
  release();
  parked_at_.reset();
  gone_.reset();
  ids_.clear();
}

void StoreRows::park() noexcept {
  if (gone_) {
    parked_at_ = std::exchange(gone_, std::nullopt);  // looked for again: a write may have put it back
  } else if (rows_) {
    try {
      parked_at_ = rows_->id();
    } catch (...) {
      parked_at_.reset();  // no place to keep: the query ends here
    }
  }
  release();
}

void StoreRows::release() noexcept {
  try {
    rows_.reset();
  } catch (...) {
    // Never reported: the rows are gone either way.
  }
}

void StoreRows::adopt(std::unique_ptr<Cursor> rows) {
  rows_ = std::move(rows);
  if (rows_->at_end()) rows_.reset();  // nothing held past the last row
}

void StoreRows::reopen(std::int64_t from) {
  parked_at_.reset();
  if (by_ids_) {
    const auto first = std::lower_bound(ids_.begin(), ids_.end(), from);
    adopt(store_->lookup(std::vector<std::int64_t>(first, ids_.end())));
  } else {
    IdRange rest = range_;
    rest.lo = std::max(rest.lo, from);
    adopt(rest.empty() ? store_->lookup({}) : store_->scan(rest));
  }
}

void StoreRows::next() {
  if (gone_) {
    gone_.reset();  // rows_ stands on the row after it already
    return;
  }
  if (parked_at_) {
    if (*parked_at_ == kIdMax) {
      parked_at_.reset();  // nothing after the largest id
      return;
    }
    return reopen(*parked_at_ + 1);
  }
  if (!rows_) return;
  rows_->next();
  if (rows_->at_end()) rows_.reset();
}

Cursor* StoreRows::current() {
  if (parked_at_) {
    const std::int64_t id = *parked_at_;
    reopen(id);
    if (!rows_ || rows_->id() != id) gone_ = id;
  }
  if (gone_) return nullptr;
  if (!rows_) throw Error("the query has no current row");
  return rows_.get();
}

std::int64_t StoreRows::id() {
  if (parked_at_) return *parked_at_;
  if (gone_) return *gone_;
  if (!rows_) throw Error("the query has no current row");
  return rows_->id();
}

}  // namespace imgstore
