// The runner of the differential tester: executes a generated sequence against a store table and against
// native SQLite tables, compares after every statement, shrinks a failing sequence and writes it as an
// sqltest.py script.
//
// Connections of one sequence (a fresh temporary directory each):
//   oracle  ref.db (WAL): the native table `ref` alone. It is the ground truth for every statement: result
//           class, rows, changes, and the transaction state (sqlite3_get_autocommit) after it.
//   main    main.db: the store table `s` and a native witness table `ref` in the SAME transaction, so
//           BEGIN / COMMIT / savepoints apply to both; the witness must agree with the oracle too.
//   reader  a separate process (forked at start-up, before anything is opened; talks over pipes) with its
//           own connection to ref.db and the store's files: between statements it must see exactly the
//           last committed state, in and out of the writer's transactions.
// Why a separate oracle connection: an OR ROLLBACK conflict ends the whole transaction of the connection it
// happens on. Run on the witness first, it would roll back the store's changes too and the store's
// execution would then run in a different state. So a statement that ended the oracle's transaction is not
// run on the witness (the store's own execution must then end the main transaction, which rolls the
// witness back with it), and the oracle stays the reference.
//
// Error classes (only the class is compared, never the message text):
//   CONSTRAINT  duplicate id (store: "id N already exists"; native: PRIMARY KEY), and a value that breaks the
//               store's rules: a negative id, a label that is NULL or not an integer, pixels that are not a blob
//               of exactly H*W*C bytes (store: vtab.cpp checked_*; native: NOT NULL and CHECK constraints, see
//               ref_schema). Subject to OR IGNORE (the row skipped, not counted) / REPLACE / FAIL / ROLLBACK on
//               both.
//   MISMATCH    an id that is not an integer (INTEGER PRIMARY KEY's datatype mismatch on both).
//   other       any other error.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "generator.hpp"

struct sqlite3;

namespace model {

struct Outcome {
  int code = 0;  // primary result code; 0 = success
  int extended = 0;
  std::string message;
  std::vector<std::string> rows;       // typed values, '|' between columns (i:5|t:'a'|n|r:2.5|x:0A)
  std::vector<std::string> list_rows;  // as the sqlite3 shell prints them in list mode
  int columns = 0;
  long long changes = 0;
  bool autocommit = true;
  std::string error_class() const;  // ok, CONSTRAINT, MISMATCH, other
  std::string describe(bool ordered) const;
};

// The contents of a whole table: rows sorted by id.
struct Snapshot {
  bool ok = false;
  std::string error;
  std::vector<std::pair<std::int64_t, std::string>> rows;  // id -> "id|label|HEX"
  std::string digest() const;                               // count:fnv64 over the rows, or the error
};

struct Failure {
  std::size_t index = 0;
  std::string kind;       // class, rows, changes, autocommit, digest, witness, reopen, new_connection, reader
  std::string statement;  // as run on the store
  std::string expected;   // the native side
  std::string actual;     // the store side
};

// The second process. One per model_test run.
class Reader {
 public:
  // Forks now: call before opening anything.
  explicit Reader(const std::string& extension);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;
  std::string ask(const std::string& line);  // one line out, one line back

 private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

struct RunnerOptions {
  std::string backend = "lmdb";
  std::string extension;      // imgstore.so; empty: registered with sqlite3_auto_extension already
  Reader* reader = nullptr;   // null: no second-process checks
  // No scan held open in the other process across writer statements: png_dir's commit waits for the
  // statements reading it (its documented rollback-journal-like isolation; tests/isolation_test.py checks
  // that a scan still sees one committed state), so the writer would get SQLITE_BUSY where WAL does not.
  bool skip_reader_scan = false;
  // A second connection in this process (its own table over the same store) reads the rows with small ids,
  // pixels too, after every statement: it must see the last committed state, whatever the writer's open
  // transaction has done to them.
  bool peer = true;
  bool keep_dir = false;
  int shards = 0;  // > 0: the store table is a sharded table of that many shards
};

// What each statement gave, for the regression file.
struct StepLog {
  bool ran = false;           // false: a meta statement skipped (reopen inside a transaction)
  bool autocommit_before = true;
  Outcome native;
  Outcome store;
  std::string file_sql;       // the check query written to the file (queries, checks)
  std::string file_expected;  // its output on the native table, list mode; "(none)" for no rows
  std::string file_store;     // its output on the store
};

class Runner {
 public:
  explicit Runner(RunnerOptions options) : options_(std::move(options)) {}
  std::optional<Failure> run(const Sequence& sequence, std::vector<StepLog>* log = nullptr);
  const RunnerOptions& options() const { return options_; }

 private:
  RunnerOptions options_;
};

// Delta debugging: the smallest sequence found that still fails with the same kind of failure.
// keep_begin: never remove a BEGIN (so the savepoints after it are not left opening transactions of their own,
// which would drift to the SAVEPOINT-opened-transaction defect; for triage with --avoid savepoint_txn).
Sequence shrink(Runner& runner, const Sequence& sequence, const Failure& failure, int max_runs = 400,
                bool keep_begin = false);

// The sequence as a script for tests/sqltest.py ({module}, {path}), expectations from the native table.
std::string regression_script(Runner& runner, const Sequence& sequence, const std::string& title);

std::string describe(const Failure& failure);

}  // namespace model
