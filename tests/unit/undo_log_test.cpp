#include <doctest/doctest.h>

#include <vector>

#include "undo_log.hpp"

using imgstore::UndoLog;

namespace {
// A value with an undo log, as a store keeps its overlay: each change pushes the old value.
struct Model {
  UndoLog<int> log;
  int value = 0;
  void set(int v) {
    log.push(value);
    value = v;
  }
  void rollback_to(int level) {
    log.rollback_to(level, [&](int old) { value = old; });
  }
};
}  // namespace

TEST_CASE("ROLLBACK TO undoes only what came after the savepoint, and keeps it open") {
  Model m;
  m.log.begin();
  m.set(1);
  m.log.savepoint(0);
  m.set(2);
  m.log.savepoint(1);
  m.set(3);
  m.rollback_to(1);
  CHECK(m.value == 2);
  m.set(4);
  m.rollback_to(1);  // the savepoint is still there
  CHECK(m.value == 2);
  m.rollback_to(0);
  CHECK(m.value == 1);
}

TEST_CASE("RELEASE merges a savepoint into its parent") {
  Model m;
  m.log.begin();
  m.log.savepoint(0);
  m.set(1);
  m.log.savepoint(1);
  m.set(2);
  m.log.release(1);
  m.rollback_to(0);
  CHECK(m.value == 0);
}

TEST_CASE("a table that joined after the savepoint undoes everything it did on ROLLBACK TO that savepoint") {
  Model m;
  m.log.savepoint(0);  // SAVEPOINT a before the table's first write: not active yet, no mark
  m.log.begin();
  m.log.savepoint(1);  // SQLite's statement savepoint once the table is in the transaction
  m.set(7);
  m.log.release(1);
  m.set(8);
  m.rollback_to(0);
  CHECK(m.value == 0);
  m.set(9);
  m.rollback_to(0);  // again, after the mark the first ROLLBACK TO left
  CHECK(m.value == 0);
}

TEST_CASE("rollback_all undoes everything and ends the transaction") {
  Model m;
  m.log.begin();
  m.set(1);
  m.log.savepoint(0);
  m.set(2);
  m.log.rollback_all([&](int old) { m.value = old; });
  CHECK(m.value == 0);
  CHECK_FALSE(m.log.active());
  CHECK(m.log.empty());
}
