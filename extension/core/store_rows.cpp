#include "store_rows.hpp"

#include <algorithm>
#include <string>

#include "error.hpp"
#include "id_bounds.hpp"

namespace imgstore {

void StoreRows::lookup(Store& store, std::vector<std::int64_t> ids) {
  close();
  store_ = &store;
  by_ids_ = true;
  ids_ = std::move(ids);
  rows_ = store.lookup(ids_);
  if (rows_->at_end()) rows_.reset();
}

void StoreRows::scan(Store& store, IdRange range) {
  close();
  store_ = &store;
  by_ids_ = false;
  range_ = range;
  rows_ = range.empty() ? store.lookup({}) : store.scan(range);
  if (rows_->at_end()) rows_.reset();
}

void StoreRows::close() noexcept {
  try {
    rows_.reset();
  } catch (...) {
    // Closing never reports: the rows are gone either way.
  }
  parked_at_.reset();
  ids_.clear();
}

void StoreRows::park() noexcept {
  if (!rows_) return;
  try {
    parked_at_ = rows_->id();
  } catch (...) {
    parked_at_.reset();  // no place to keep: the query ends here
  }
  try {
    rows_.reset();
  } catch (...) {
    // As close(): released either way.
  }
}

void StoreRows::reopen(std::int64_t from) {
  parked_at_.reset();
  if (by_ids_) {
    const auto first = std::lower_bound(ids_.begin(), ids_.end(), from);
    rows_ = store_->lookup(std::vector<std::int64_t>(first, ids_.end()));
  } else {
    IdRange rest = range_;
    rest.lo = std::max(rest.lo, from);
    rows_ = rest.empty() ? store_->lookup({}) : store_->scan(rest);
  }
  if (rows_->at_end()) rows_.reset();
}

void StoreRows::next() {
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

Cursor& StoreRows::row() {
  if (parked_at_) {
    const std::int64_t id = *parked_at_;
    reopen(id);
    if (!rows_ || rows_->id() != id) {
      throw Error("the row with id " + std::to_string(id) + " that this query stood on was removed by a write of the "
                  "same connection");
    }
  }
  if (!rows_) throw Error("the query has no current row");
  return *rows_;
}

}  // namespace imgstore
