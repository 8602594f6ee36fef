// One SQLite connection with the imgstore extension loaded, running SQL scripts the way the stock sqlite3
// shell does (statements split by sqlite3_complete, @parameters bound from temp.sqlite_parameters, a few dot
// commands understood) and timing every statement.
#pragma once

#include <sqlite3.h>

#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace imgbench {

struct StatementRun {
  std::string script;
  int index = 0;             // statement number in its script, from 1
  std::string label;         // from a "-- measure: NAME" comment before it, else empty
  bool cold = false;         // "-- measure: NAME cold": the OS page cache was dropped before it
  bool cache_dropped = false;
  std::string sql;           // the statement's text, trimmed
  double seconds = 0;
  std::int64_t rows = 0;
  std::string first_row;     // the first result row, '|' between columns
};

struct StatementFinalizer {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using Statement = std::unique_ptr<sqlite3_stmt, StatementFinalizer>;

// Prepares the one statement in `sql`; throws std::runtime_error naming the SQL and SQLite's message when it
// does not prepare, so no caller ever steps a NULL statement.
Statement prepare(sqlite3* db, const std::string& sql);

class Session {
 public:
  explicit Session(const std::string& extension);
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  sqlite3* db() const { return db_.get(); }
  // Sets a parameter as `.parameter set` does: a number stays a number, 'quoted' text (with '' for a
  // quote, as in SQL) or bare text is text.
  void set_param(const std::string& name, const std::string& value);
  // Sets a parameter to exactly this text, whatever it looks like (a path, a data set name).
  void set_text_param(const std::string& name, const std::string& value);
  // Runs a script; throws std::runtime_error naming the script, line and SQLite's message on the first error.
  std::vector<StatementRun> run_script(const std::string& path);
  // The same for SQL text (--prepare, --cleanup); `name` stands for the script's path in errors.
  std::vector<StatementRun> run_text(const std::string& sql, const std::string& name);
  // Runs one query and returns its first row's first column as text (empty when no row).
  std::string query_text(const std::string& sql);

  // Called while a statement runs (every 20,000 VM instructions), with the elapsed seconds.
  std::function<void(const std::string& label, double elapsed)> on_progress;
  // Seconds a statement may run (0: no limit; imgbench --timeout). One running longer is interrupted, and
  // run_script throws naming its script, line and text.
  double timeout = 0;

 private:
  std::vector<StatementRun> run_stream(std::istream& in, const std::string& path);
  void bind_parameters(sqlite3_stmt* stmt);
  void dot_command(const std::string& line, const std::string& where);
  StatementRun execute(sqlite3_stmt* stmt, const std::string& where, const std::string& sql);

  struct Closer {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
  };
  std::unique_ptr<sqlite3, Closer> db_;
  std::string current_label_;
  double started_ = 0;
  double deadline_ = 0;     // while a statement with a timeout runs: when it is interrupted (0: never)
  bool timed_out_ = false;  // the last statement was interrupted at its deadline
};

// Drops the OS page cache, dentries and inodes (sync, then 3 into drop_caches; needs root); false when not allowed.
bool drop_page_cache();

double now_seconds();

}  // namespace imgbench
