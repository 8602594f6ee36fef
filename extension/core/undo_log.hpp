// The transaction core shared by the backends that keep a transaction's changes in memory until COMMIT
// (hdf5, png_dir; LMDB has nested transactions of its own): an undo log with SQLite's savepoint stack on top.
//
// SQLite numbers savepoints from 0 (the outermost SAVEPOINT, or a statement's own savepoint) upwards. A table
// that joins a transaction late (its first write comes after SAVEPOINT a) gets xSavepoint only for the levels
// opened after it joined, yet ROLLBACK TO a must still undo everything it did: a level with no mark means
// "before this table joined", which is the start of the log.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"

namespace imgstore {

template <typename Undo>
class UndoLog {
 public:
  bool active() const { return active_; }
  // Changes happen only inside a transaction: SQLite calls xBegin (or the adapter begins) before any write.
  void require_active(const std::string& table, const char* what) const {
    if (!active_) throw Error("table " + table + ": " + what + " outside a transaction (SQLite did not call xBegin)");
  }
  void begin() { active_ = true; }

  // Records how to undo one change; the newest is undone first.
  void push(Undo undo) { log_.push_back(std::move(undo)); }
  bool empty() const { return log_.empty(); }

  void savepoint(int level) {
    if (!active_) return;
    drop_marks_above(level - 1);
    marks_.push_back({level, log_.size()});
  }
  void release(int level) { drop_marks_above(level - 1); }

  // Undoes every change made since savepoint `level`, newest first, calling undo(entry) for each. The
  // savepoint stays open (as SQL's ROLLBACK TO leaves it).
  template <typename Apply>
  void rollback_to(int level, Apply&& undo) {
    drop_marks_above(level);
    if (marks_.empty() || marks_.back().first != level) {
      // Opened before this table joined: back to the start. (A level between two marks cannot occur: once
      // the table is in the transaction, SQLite tells it of every savepoint.)
      marks_.push_back({level, marks_.empty() ? 0 : marks_.back().second});
    }
    undo_to(marks_.back().second, undo);
  }

  // Undoes everything and ends the transaction.
  template <typename Apply>
  void rollback_all(Apply&& undo) {
    undo_to(0, undo);
    end();
  }

  void end() {
    active_ = false;
    log_.clear();
    marks_.clear();
  }

 private:
  void drop_marks_above(int level) {
    while (!marks_.empty() && marks_.back().first > level) marks_.pop_back();
  }
  template <typename Apply>
  void undo_to(std::size_t keep, Apply& undo) {
    while (log_.size() > keep) {
      Undo entry = std::move(log_.back());
      log_.pop_back();
      undo(entry);
    }
  }

  bool active_ = false;
  std::vector<Undo> log_;
  std::vector<std::pair<int, std::size_t>> marks_;  // (savepoint level, log size when it was opened)
};

}  // namespace imgstore
