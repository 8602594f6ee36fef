#include "runner.hpp"

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

namespace model {

namespace {

std::string store_suffix(const std::string& backend) {
  if (backend == "lmdb") return ".lmdb";
  if (backend == "hdf5") return ".h5";
  return "_png";
}

std::string hex(const void* data, int size) {
  static const char* digits = "0123456789ABCDEF";
  std::string s;
  const auto* p = static_cast<const unsigned char*>(data);
  for (int i = 0; i < size; ++i) {
    s += digits[p[i] >> 4];
    s += digits[p[i] & 15];
  }
  return s;
}

std::string typed(sqlite3_stmt* st, int i) {
  switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: return "i:" + std::to_string(sqlite3_column_int64(st, i));
    case SQLITE_FLOAT: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "r:%.17g", sqlite3_column_double(st, i));
      return buf;
    }
    case SQLITE_TEXT:
      return "t:'" + std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, i)),
                                 static_cast<std::size_t>(sqlite3_column_bytes(st, i))) + "'";
    case SQLITE_BLOB: return "x:" + hex(sqlite3_column_blob(st, i), sqlite3_column_bytes(st, i));
    default: return "n";
  }
}

std::string listed(sqlite3_stmt* st, int i) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) return "";
  const auto* text = sqlite3_column_text(st, i);
  return text == nullptr ? "" : std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(st, i)));
}

Outcome exec(sqlite3* db, const std::string& sql) {
  Outcome o;
  const char* tail = sql.c_str();
  while (tail != nullptr && *tail != '\0') {
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, tail, -1, &st, &tail);
    if (rc != SQLITE_OK) {
      o.extended = sqlite3_extended_errcode(db);
      o.code = o.extended & 0xff;
      o.message = sqlite3_errmsg(db);
      break;
    }
    if (st == nullptr) break;
    o.columns = sqlite3_column_count(st);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
      std::string row, list;
      for (int i = 0; i < o.columns; ++i) {
        row += (i ? "|" : "") + typed(st, i);
        list += (i ? "|" : "") + listed(st, i);
      }
      o.rows.push_back(row);
      o.list_rows.push_back(list);
    }
    if (rc != SQLITE_DONE) {
      o.extended = sqlite3_extended_errcode(db);
      o.code = o.extended & 0xff;
      if (o.code == 0) o.code = rc & 0xff, o.extended = rc;
      o.message = sqlite3_errmsg(db);
      sqlite3_finalize(st);
      break;
    }
    sqlite3_finalize(st);
  }
  o.changes = sqlite3_changes64(db);
  o.autocommit = sqlite3_get_autocommit(db) != 0;
  return o;
}

void must(sqlite3* db, const std::string& sql) {
  const Outcome o = exec(db, sql);
  if (o.code != 0) throw std::runtime_error("setup failed: " + sql + ": " + o.message);
}

// The columns a whole-table comparison reads: a store of shape 'any' has each row's shape too (hidden columns of
// the store, plain columns of the native table).
const char* row_columns(bool any) { return any ? "id, label, pixels, height, width, channels" : "id, label, pixels"; }

// One row of a scan of row_columns() as a Snapshot holds it: the id, and "id|label|HEX" (shape 'any': and
// "|i:H|i:W|i:C").
std::pair<std::int64_t, std::string> snapshot_row(sqlite3_stmt* st) {
  std::string row = std::to_string(sqlite3_column_int64(st, 0)) + "|" + typed(st, 1) + "|" + typed(st, 2);
  for (int i = 3; i < sqlite3_column_count(st); ++i) row += "|" + typed(st, i);
  return {sqlite3_column_int64(st, 0), row};
}

// The rows of a query whose first column is the id (row_columns, or an own scan's columns), sorted.
Snapshot query_snapshot(sqlite3* db, const std::string& sql) {
  Snapshot snap;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    snap.error = std::string("error (") + std::to_string(sqlite3_extended_errcode(db)) + "): " + sqlite3_errmsg(db);
    return snap;
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) snap.rows.push_back(snapshot_row(st));
  if (rc != SQLITE_DONE) {
    snap.error = std::string("error (") + std::to_string(sqlite3_extended_errcode(db)) + "): " + sqlite3_errmsg(db);
    sqlite3_finalize(st);
    return snap;
  }
  sqlite3_finalize(st);
  std::sort(snap.rows.begin(), snap.rows.end());
  snap.ok = true;
  return snap;
}

Snapshot snapshot(sqlite3* db, const std::string& table, bool any) {
  return query_snapshot(db, std::string("SELECT ") + row_columns(any) + " FROM " + table);
}

// First difference between two snapshots, for messages.
std::string first_difference(const Snapshot& a, const Snapshot& b) {
  std::map<std::int64_t, std::string> ma(a.rows.begin(), a.rows.end()), mb(b.rows.begin(), b.rows.end());
  std::string out;
  int shown = 0;
  for (const auto& [id, row] : ma) {
    const auto it = mb.find(id);
    if (it == mb.end() || it->second != row) {
      out += " native has " + row + (it == mb.end() ? ", store has no such id;" : ", store has " + it->second + ";");
      if (++shown == 3) return out;
    }
  }
  for (const auto& [id, row] : mb) {
    if (ma.count(id) == 0) {
      out += " store has extra row " + row + ";";
      if (++shown == 3) return out;
    }
  }
  return out;
}

// 1: a function in a CHECK constraint, so that SQLite gives every write of the native table a statement
// journal. Without one (UPDATE OR FAIL / IGNORE / ROLLBACK, where no constraint aborts), a datatype mismatch
// met mid-statement (an id that overflows to a float) leaves the rows changed before it in a native table,
// while a virtual table's statement is rolled back through xRollbackTo: a quirk of SQLite's, not the store's.
void statement_journal(sqlite3_context* ctx, int, sqlite3_value**) { sqlite3_result_int(ctx, 1); }

sqlite3* open_db(const std::string& path, const std::string& extension) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    const std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path + ": " + msg);
  }
  if (!extension.empty()) {
    sqlite3_enable_load_extension(db, 1);
    char* err = nullptr;
    if (sqlite3_load_extension(db, extension.c_str(), "sqlite3_imgstore_init", &err) != SQLITE_OK) {
      const std::string msg = err ? err : "?";
      sqlite3_free(err);
      sqlite3_close(db);
      throw std::runtime_error("cannot load " + extension + ": " + msg);
    }
  }
  sqlite3_create_function(db, "model_statement_journal", 0, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS,
                          nullptr, statement_journal, nullptr, nullptr);
  return db;
}

// The store's rules as a native table's constraints (vtab.cpp, "xUpdate: value checks"): so OR IGNORE skips a
// row that breaks them on both, and every other conflict clause fails on both (SQLITE_CONSTRAINT; an id that
// is not an integer: SQLITE_MISMATCH, as INTEGER PRIMARY KEY's datatype mismatch).
// Shape 'any': height, width and channels are columns, positive integers (channels at most 4), given together,
// and the pixels are height*width*channels bytes (vtab.cpp, given_shape and checked_pixels).
std::string ref_schema(const Sequence& seq) {
  if (seq.any()) {
    return "CREATE TABLE ref(id INTEGER PRIMARY KEY CHECK (id >= 0 AND model_statement_journal()), "
           "label INTEGER NOT NULL CHECK (typeof(label) = 'integer'), "
           "pixels BLOB CHECK (typeof(pixels) = 'blob' AND length(pixels) = height * width * channels), "
           "height INTEGER NOT NULL CHECK (typeof(height) = 'integer' AND height > 0), "
           "width INTEGER NOT NULL CHECK (typeof(width) = 'integer' AND width > 0), "
           "channels INTEGER NOT NULL CHECK (typeof(channels) = 'integer' AND channels BETWEEN 1 AND 4))";
  }
  return "CREATE TABLE ref(id INTEGER PRIMARY KEY CHECK (id >= 0 AND model_statement_journal()), "
         "label INTEGER NOT NULL CHECK (typeof(label) = 'integer'), "
         "pixels BLOB CHECK (typeof(pixels) = 'blob' AND length(pixels) = " + std::to_string(seq.pixel_bytes) + "))";
}

std::string quote_path(const std::string& p) {
  std::string q = "'";
  for (char c : p) q += c == '\'' ? std::string("''") : std::string(1, c);
  return q + "'";
}

// Rows as they are compared: in order when the statement gave an ORDER BY, otherwise as a sorted multiset.
std::vector<std::string> in_order(std::vector<std::string> rows, bool ordered) {
  if (!ordered) std::sort(rows.begin(), rows.end());
  return rows;
}

std::string rows_text(const std::vector<std::string>& rows, bool ordered) {
  const std::vector<std::string> r = in_order(rows, ordered);
  std::string s;
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (i == 12) {
      s += " ... (" + std::to_string(r.size()) + " rows)";
      break;
    }
    s += (i ? " ; " : "") + r[i];
  }
  return r.empty() ? "(no rows)" : s;
}

// The query written to a regression file for a query statement: as is when the native table gives at most
// one row (sqltest's `-- expect:` is one line), else wrapped to give one line.
std::string file_query(const std::string& sql, int columns, bool ordered, std::size_t native_rows) {
  if (native_rows <= 1) return sql;
  std::string cols, concat;
  for (int i = 0; i < columns; ++i) {
    cols += (i ? ", c" : "c") + std::to_string(i);
    concat += (i ? " || '|' || " : "") + std::string("coalesce(c") + std::to_string(i) + ", '')";
  }
  return "WITH q(" + cols + ") AS (" + sql + ")\nSELECT group_concat(r, ' ; ') FROM (SELECT " + concat + " AS r FROM q" +
         (ordered ? "" : " ORDER BY r") + ")";
}

std::string check_query(const std::string& table, std::size_t rows, bool any) {
  if (rows <= 12) {
    return std::string("SELECT count(*) || ':' || ifnull(group_concat(id || ',' || label || ',' || hex(pixels)") +
           (any ? " || ',' || height || 'x' || width || 'x' || channels" : "") + ", ' '), '') FROM (SELECT " +
           row_columns(any) + " FROM " + table + " ORDER BY id)";
  }
  // (Shape 'any': the shapes digested as labels of empty images.)
  return std::string("SELECT image_digest(id, label, pixels)") +
         (any ? " || ' ' || image_digest(id, height * 1000000 + width * 1000 + channels, zeroblob(0))" : "") + " FROM " +
         table;
}

std::string one_line(sqlite3* db, const std::string& sql) {
  const Outcome o = exec(db, sql);
  if (o.code != 0) return "error (" + std::to_string(o.extended) + "): " + o.message;
  if (o.list_rows.empty()) return "(none)";
  std::string s;
  for (std::size_t i = 0; i < o.list_rows.size(); ++i) s += (i ? "\n" : "") + o.list_rows[i];
  return s;
}

// MODEL_TRACE=1: every statement and both outcomes on stderr.
bool trace() {
  static const bool on = std::getenv("MODEL_TRACE") != nullptr;
  return on;
}

void trace_step(std::size_t i, const std::string& sql, const Outcome& want, const Outcome& got, bool ordered) {
  if (!trace()) return;
  std::fprintf(stderr, "%zu: %s\n   native %s\n   store  %s\n", i, sql.c_str(), want.describe(ordered).c_str(),
               got.describe(ordered).c_str());
}

class TempDir {
 public:
  // The stores live in memory (/dev/shm) unless TMPDIR says otherwise: the tester checks what a statement
  // does, not what survives a crash (the crash tests do), and png_dir's fsyncs on a disk made it 4-10x
  // slower.
  explicit TempDir(bool keep) : keep_(keep) {
    const char* base = std::getenv("TMPDIR");
    const bool shm = ::access("/dev/shm", W_OK) == 0;
    std::string pattern = std::string(base && *base ? base : shm ? "/dev/shm" : "/tmp") + "/imgstore-model-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!keep_) std::filesystem::remove_all(path, ec);
  }
  std::string path;

 private:
  bool keep_;
};

struct Db {
  sqlite3* db = nullptr;
  ~Db() { sqlite3_close_v2(db); }
};

// ---- the reader process

std::string read_line(int fd) {
  std::string line;
  char c;
  while (true) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n <= 0) return line.empty() ? "err reader process gone" : line;
    if (c == '\n') return line;
    line += c;
  }
}

void write_line(int fd, const std::string& line) {
  std::string s = line + "\n";
  const char* p = s.data();
  std::size_t left = s.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// One check in the reader: count/digest of the store and of ref, each as its own statement.
std::string reader_check(sqlite3* db, bool any) {
  const Snapshot s = snapshot(db, "s", any);
  const Snapshot r = snapshot(db, "r.ref", any);
  return "ok\t" + s.digest() + "\t" + r.digest();
}

sqlite3* reader_open(const std::string& extension, const std::string& backend, const std::string& dir,
                     const std::string& store, std::string& error) {
  sqlite3* db = nullptr;
  try {
    db = open_db(":memory:", extension);
  } catch (const std::exception& e) {
    error = e.what();
    return nullptr;
  }
  Outcome o = exec(db, "ATTACH " + quote_path(dir + "/ref.db") + " AS r");
  if (o.code == 0) o = exec(db, "CREATE VIRTUAL TABLE s USING " + backend + "(path=" + quote_path(store) + ")");
  if (o.code != 0) {
    error = "error (" + std::to_string(o.extended) + "): " + o.message;
    sqlite3_close_v2(db);
    return nullptr;
  }
  return db;
}

// The reader process: the store it was told of, its long-lived connection, and a scan left open between
// writer statements. Each command gets one line back on `out`.
class ReaderProcess {
 public:
  ReaderProcess(std::string extension, int out) : extension_(std::move(extension)), out_(out) {}
  void answer(const std::string& command, std::istringstream& words);

 private:
  void forget();
  void check(bool fresh);
  void scan_start(int k);
  std::string scan_read(int k);
  void scan_finish();
  [[noreturn]] void quit();

  const std::string extension_;
  const int out_;
  std::string backend_, dir_, store_;
  bool any_ = false;  // the store is of shape 'any'
  sqlite3* db_ = nullptr;
  sqlite3_stmt* scan_ = nullptr;  // a scan left open between writer statements
  std::vector<std::pair<std::int64_t, std::string>> scan_rows_;
  Snapshot scan_want_;
  bool scan_done_ = false;
};

void ReaderProcess::answer(const std::string& command, std::istringstream& words) {
  if (command == "open") {
    std::string shape;
    words >> backend_ >> dir_ >> store_ >> shape;
    any_ = shape == "any";
    forget();
  } else if (command == "check" || command == "fresh") {
    check(command == "fresh");
  } else if (command == "scan-start") {
    int k = 0;
    words >> k;
    scan_start(k);
  } else if (command == "scan-finish") {
    scan_finish();
  } else if (command == "close") {
    forget();
  } else {
    quit();
  }
}

// Closes the connection (and its scan): the next command opens the store afresh.
void ReaderProcess::forget() {
  if (scan_) sqlite3_finalize(scan_), scan_ = nullptr;
  if (db_) sqlite3_close_v2(db_);
  db_ = nullptr;
  write_line(out_, "ok");
}

void ReaderProcess::check(bool fresh) {
  std::string error;
  if (fresh) {
    sqlite3* db = reader_open(extension_, backend_, dir_, store_, error);
    write_line(out_, db ? reader_check(db, any_) : "err\t" + error);
    sqlite3_close_v2(db);
    return;
  }
  if (!db_) db_ = reader_open(extension_, backend_, dir_, store_, error);
  write_line(out_, db_ ? reader_check(db_, any_) : "err\t" + error);
}

void ReaderProcess::scan_start(int k) {
  std::string error;
  if (!db_) db_ = reader_open(extension_, backend_, dir_, store_, error);
  if (!db_) return write_line(out_, "err\t" + error);
  if (scan_) sqlite3_finalize(scan_), scan_ = nullptr, exec(db_, "COMMIT");
  scan_rows_.clear();
  scan_done_ = false;
  exec(db_, "BEGIN");
  scan_want_ = snapshot(db_, "r.ref", any_);  // the native table's snapshot: held by the read transaction
  if (sqlite3_prepare_v2(db_, (std::string("SELECT ") + row_columns(any_) + " FROM s").c_str(), -1, &scan_, nullptr) !=
      SQLITE_OK) {
    return write_line(out_, std::string("err\t") + sqlite3_errmsg(db_));
  }
  write_line(out_, scan_read(k));
}

// The first k rows of the scan: "ok", or the error.
std::string ReaderProcess::scan_read(int k) {
  std::string reply = "ok";
  for (int i = 0; i < k; ++i) {
    const int rc = sqlite3_step(scan_);
    if (rc == SQLITE_ROW) {
      scan_rows_.push_back(snapshot_row(scan_));
    } else {
      if (rc != SQLITE_DONE) reply = std::string("err\t") + sqlite3_errmsg(db_);
      scan_done_ = true;  // stepping again would restart the statement
      break;
    }
  }
  return reply;
}

void ReaderProcess::scan_finish() {
  if (!scan_) return write_line(out_, "none");
  int rc = SQLITE_DONE;
  while (!scan_done_ && (rc = sqlite3_step(scan_)) == SQLITE_ROW) scan_rows_.push_back(snapshot_row(scan_));
  Snapshot got;
  got.ok = rc == SQLITE_DONE;
  if (!got.ok) got.error = std::string("error: ") + sqlite3_errmsg(db_);
  got.rows = scan_rows_;
  std::sort(got.rows.begin(), got.rows.end());
  sqlite3_finalize(scan_);
  scan_ = nullptr;
  exec(db_, "COMMIT");
  write_line(out_, "ok\t" + got.digest() + "\t" + scan_want_.digest() +
                       (got.digest() == scan_want_.digest() ? "" : "\t" + first_difference(scan_want_, got)));
}

void ReaderProcess::quit() {
  if (db_) sqlite3_close_v2(db_);
  std::_Exit(0);
}

[[noreturn]] void reader_main(int in, int out, const std::string& extension) {
  ReaderProcess reader(extension, out);
  while (true) {
    const std::string line = read_line(in);
    std::istringstream words(line);
    std::string command;
    words >> command;
    reader.answer(command, words);
  }
}

// ---- one run of a sequence

// Tells the reader process to close its connections when a run ends, however it ends.
struct ReaderClose {
  Reader* r;
  ~ReaderClose() {
    if (r) r->ask("close");
  }
};

// The two digests of a reader's "ok\t<store>\t<native>" reply.
std::pair<std::string, std::string> reply_digests(const std::string& reply) {
  const auto a = reply.find('\t', 3);
  return {reply.substr(3, a - 3), reply.substr(a + 1)};
}

// What a table statement gave on each side.
struct TableOutcomes {
  Outcome want;                    // the oracle
  std::optional<Outcome> witness;  // the native table in the store's connection, unless the oracle's transaction ended
  Outcome got;                     // the store
};

// The query of an own scan ("start K V B", generator.cpp): V 0 every column, 1 pixels only of ids above B, 2 ids
// from B on.
std::string own_scan_sql(int variant, const std::string& bound, bool any) {
  if (variant == 1) {
    return "SELECT id, label, CASE WHEN id > " + bound + " THEN pixels END" + (any ? ", height, width, channels" : "") +
           " FROM {t}";
  }
  return std::string("SELECT ") + row_columns(any) + " FROM {t}" + (variant == 2 ? " WHERE id >= " + bound : "");
}

// One side of a scan the writer's own connection holds open across its statements: the store's, or the same
// query on the native witness.
struct OpenScan {
  sqlite3_stmt* st = nullptr;
  bool done = false;
  std::string error;                // the step that failed
  std::string bad_row;              // the first row read that the table did not hold at any point since the start
  std::set<std::int64_t> seen;      // ids read
  OpenScan() = default;
  OpenScan(const OpenScan&) = delete;
  OpenScan& operator=(const OpenScan&) = delete;
  ~OpenScan() { sqlite3_finalize(st); }

  void read(sqlite3* db, int k, const std::set<std::string>& versions) {
    for (int n = 0; (k < 0 || n < k) && !done; ++n) {
      const int rc = sqlite3_step(st);
      if (rc == SQLITE_ROW) {
        const auto row = snapshot_row(st);
        seen.insert(row.first);
        if (bad_row.empty() && versions.count(row.second) == 0) bad_row = row.second;
      } else {
        if (rc != SQLITE_DONE) error = "error (" + std::to_string(sqlite3_extended_errcode(db)) + "): " + sqlite3_errmsg(db);
        done = true;  // stepping again would restart the statement
      }
    }
  }
};

// An own scan: both sides and what the table held since it started.
struct OwnScan {
  std::string sql;                              // with {t}
  std::size_t started = 0;                      // the statement that opened it
  OpenScan store, witness;
  std::set<std::string> versions;               // every row of the query on the witness between statements
  std::map<std::int64_t, std::string> steady;   // rows held unchanged since the start: a scan must read them
};

// The statements of one sequence over the connections Runner::run set up, each compared as it runs, until the
// first failure.
class Execution {
 public:
  Execution(const RunnerOptions& options, sqlite3* oracle, sqlite3* main, sqlite3* peer, const std::string& create_s,
            std::vector<StepLog>* log, bool any)
      : options_(options), reader_(options.reader), oracle_(oracle), main_(main), peer_(peer), create_s_(create_s),
        log_(log), any_(any) {}
  std::optional<Failure> run(const Sequence& seq);

 private:
  void statement(std::size_t i, const Statement& st, bool at_end);
  void table(std::size_t i, const Statement& st);
  void log_table(std::size_t i, const Statement& st, const TableOutcomes& o);
  void compare_table(std::size_t i, const Statement& st, const TableOutcomes& o);
  void control(std::size_t i, const Statement& st);
  void check(std::size_t i, bool at_end);
  void fresh_reader_at_end(std::size_t i);
  void reopen(std::size_t i);
  void reader_scan(std::size_t i, const Statement& st);
  void own_scan(std::size_t i, const Statement& st);
  void own_scan_after(std::size_t i);
  void own_scan_finish(std::size_t i);
  void own_scan_judge(std::size_t i, const OpenScan& side, const char* kind, const char* who);
  bool new_connection(std::size_t i);
  void ask_reader(std::size_t i, bool fresh);
  void ask_peer(std::size_t i, const std::string& after);
  void compare_tables(std::size_t i, const std::string& what);
  void finish_scan(std::size_t i);
  void log_file_query(StepLog& step, const std::string& file_sql);
  void skipped(std::size_t i);
  void fail(std::size_t i, std::string kind, std::string statement, std::string expected, std::string actual);

  const RunnerOptions& options_;
  Reader* const reader_;
  sqlite3* const oracle_;
  sqlite3* const main_;
  sqlite3* const peer_;  // null: no peer checks
  const std::string& create_s_;  // CREATE VIRTUAL TABLE s ... without its closing parenthesis
  std::vector<StepLog>* const log_;
  const bool any_;  // a store of shape 'any': rows compared with their height, width and channels
  std::optional<Failure> failure_;
  bool autocommit_ = true;  // the main connection, before the current statement
  bool scan_open_ = false;  // the reader has a scan open (reader_scan start without finish yet)
  std::unique_ptr<OwnScan> own_;  // the writer's own open scan (own_scan start without finish yet)
};

std::optional<Failure> Execution::run(const Sequence& seq) {
  const std::size_t n = seq.statements.size();
  for (std::size_t i = 0; i <= n && !failure_; ++i) {
    // i == n: the final check after the last statement.
    const Statement st = i < n ? seq.statements[i] : Statement{Kind::check, ""};
    autocommit_ = sqlite3_get_autocommit(main_) != 0;
    if (log_) (*log_)[i].autocommit_before = autocommit_, (*log_)[i].ran = true;
    statement(i, st, i == n);
    if (own_ && !failure_ && st.kind != Kind::own_scan) own_scan_after(i);
  }
  return failure_;
}

void Execution::statement(std::size_t i, const Statement& st, bool at_end) {
  switch (st.kind) {
    case Kind::table:
      table(i, st);
      return ask_peer(i, with_table(st.sql, "s"));
    case Kind::control:
      control(i, st);
      return ask_peer(i, st.sql);
    case Kind::check: return check(i, at_end);
    case Kind::reopen: return reopen(i);
    case Kind::reader_scan: return reader_scan(i, st);
    case Kind::new_connection:
      if (new_connection(i)) ask_reader(i, true);
      return;
    case Kind::reader: return ask_reader(i, false);
    case Kind::own_scan: return own_scan(i, st);
  }
}

void Execution::table(std::size_t i, const Statement& st) {
  // A NULL id when the largest id is 2^63-1: SQLite picks a random free rowid, which no store can
  // reproduce (the stores refuse with SQLITE_FULL, documented). Not compared.
  const bool null_id = st.sql.find("INTO {t}(label, pixels") != std::string::npos ||
                       (st.sql.find(" VALUES ") != std::string::npos && st.sql.find("(NULL, ") != std::string::npos);
  if (null_id &&
      one_line(oracle_, "SELECT max(id) = 9223372036854775807 FROM ref") == "1") {
    return skipped(i);
  }
  const std::string ref_sql = with_table(st.sql, "ref");
  const std::string s_sql = with_table(st.sql, "s");
  const bool oracle_in_txn = sqlite3_get_autocommit(oracle_) == 0;
  TableOutcomes o;
  o.want = exec(oracle_, ref_sql);
  const bool ended = oracle_in_txn && o.want.autocommit;
  if (!ended) o.witness = exec(main_, ref_sql);
  o.got = exec(main_, s_sql);
  trace_step(i, s_sql, o.want, o.got, st.ordered);
  if (log_) log_table(i, st, o);
  compare_table(i, st, o);
}

void Execution::log_table(std::size_t i, const Statement& st, const TableOutcomes& o) {
  StepLog& step = (*log_)[i];
  step.native = o.want;
  step.store = o.got;
  if (st.query && o.want.code == 0) {
    log_file_query(step, file_query(st.sql, o.want.columns, st.ordered, o.want.rows.size()));
  }
}

void Execution::compare_table(std::size_t i, const Statement& st, const TableOutcomes& o) {
  const Outcome& want = o.want;
  const Outcome& got = o.got;
  const std::string s_sql = with_table(st.sql, "s");
  if (want.error_class() != got.error_class()) {
    fail(i, "class", s_sql, want.describe(st.ordered), got.describe(st.ordered));
  } else if (want.code == 0 && in_order(want.rows, st.ordered) != in_order(got.rows, st.ordered)) {
    fail(i, "rows", s_sql, want.describe(st.ordered), got.describe(st.ordered));
  } else if (want.code == 0 && !st.query && want.changes != got.changes) {
    fail(i, "changes", s_sql, want.describe(st.ordered), got.describe(st.ordered));
  } else if (want.autocommit != got.autocommit) {
    fail(i, "autocommit", s_sql, want.describe(st.ordered), got.describe(st.ordered));
  } else if (o.witness && (o.witness->error_class() != want.error_class() ||
                           (want.code == 0 && in_order(o.witness->rows, st.ordered) != in_order(want.rows, st.ordered)))) {
    fail(i, "witness", with_table(st.sql, "ref") + " (in the store's connection)", want.describe(st.ordered),
         o.witness->describe(st.ordered));
  } else if (want.code != 0 || got.code != 0) {
    compare_tables(i, "the tables after: " + s_sql);
  }
}

void Execution::control(std::size_t i, const Statement& st) {
  const Outcome want = exec(oracle_, st.sql);
  const Outcome got = exec(main_, st.sql);
  trace_step(i, st.sql, want, got, false);
  if (log_) (*log_)[i].native = want, (*log_)[i].store = got;
  if (want.error_class() != got.error_class() || want.autocommit != got.autocommit) {
    fail(i, want.error_class() != got.error_class() ? "class" : "autocommit", st.sql, want.describe(false),
         got.describe(false));
  } else if (want.code != 0 || got.code != 0) {
    compare_tables(i, "the tables after: " + st.sql);
  }
}

void Execution::check(std::size_t i, bool at_end) {
  if (at_end) finish_scan(i);
  if (at_end && !failure_) own_scan_finish(i);
  if (failure_) return;
  compare_tables(i, at_end ? "the tables at the end" : "checkpoint");
  if (!failure_ && at_end && autocommit_ && reader_) fresh_reader_at_end(i);
}

// One more: a fresh connection in another process sees the final committed state.
void Execution::fresh_reader_at_end(std::size_t i) {
  const std::string reply = reader_->ask("fresh");
  const Snapshot want = snapshot(oracle_, "ref", any_);
  const std::string what = "a new connection in another process opening the store at the end";
  if (reply.rfind("ok\t", 0) != 0) return fail(i, "reader", what, want.digest(), reply);
  const auto [s, r] = reply_digests(reply);
  if (s != r || r != want.digest()) {
    fail(i, "reader", what, "store = native = " + want.digest(), "store " + s + ", native " + r);
  }
}

void Execution::reopen(std::size_t i) {
  if (!autocommit_) return skipped(i);
  own_scan_finish(i);  // DROP TABLE fails while a statement reads the table
  if (failure_) return;
  Outcome o = exec(main_, "DROP TABLE s");
  if (o.code == 0) o = exec(main_, create_s_ + ")");
  if (o.code != 0) fail(i, "reopen", "DROP TABLE s; " + create_s_ + ")", "ok", o.describe(false));
}

void Execution::reader_scan(std::size_t i, const Statement& st) {
  if (!reader_ || options_.skip_reader_scan) return;
  if (st.sql.rfind("start", 0) != 0) return finish_scan(i);
  const std::string reply = reader_->ask("scan-" + st.sql);
  scan_open_ = reply == "ok";
  if (!scan_open_) fail(i, "reader", "another process starts a scan of the store", "ok", reply);
}

void Execution::own_scan(std::size_t i, const Statement& st) {
  std::istringstream words(st.sql);
  std::string what;
  int k = 0;
  words >> what >> k;
  if (what == "finish") return own_scan_finish(i);
  if (what == "read") {
    if (!own_) return;
    own_->store.read(main_, k, own_->versions);
    own_->witness.read(main_, k, own_->versions);
    return;
  }
  own_scan_finish(i);
  if (failure_) return;
  int variant = 0;
  std::string bound;
  words >> variant >> bound;
  auto scan = std::make_unique<OwnScan>();
  scan->sql = own_scan_sql(variant, bound, any_);
  scan->started = i;
  const Snapshot now = query_snapshot(main_, with_table(scan->sql, "ref"));
  if (!now.ok) return fail(i, "own_scan", with_table(scan->sql, "ref"), "rows", now.error);
  for (const auto& [id, row] : now.rows) scan->versions.insert(row), scan->steady[id] = row;
  for (auto [side, table] : {std::pair{&scan->store, "s"}, std::pair{&scan->witness, "ref"}}) {
    if (sqlite3_prepare_v2(main_, with_table(scan->sql, table).c_str(), -1, &side->st, nullptr) != SQLITE_OK) {
      return fail(i, "own_scan", with_table(scan->sql, table), "prepared", sqlite3_errmsg(main_));
    }
    side->read(main_, k, scan->versions);
  }
  own_ = std::move(scan);
}

// After a statement while an own scan is open: what the table holds now is a version its rows may be read as.
void Execution::own_scan_after(std::size_t i) {
  const Snapshot now = query_snapshot(main_, with_table(own_->sql, "ref"));
  if (!now.ok) return fail(i, "own_scan", with_table(own_->sql, "ref"), "rows", now.error);
  const std::map<std::int64_t, std::string> rows(now.rows.begin(), now.rows.end());
  for (const auto& [id, row] : rows) own_->versions.insert(row);
  for (auto it = own_->steady.begin(); it != own_->steady.end();) {
    const auto r = rows.find(it->first);
    it = r == rows.end() || r->second != it->second ? own_->steady.erase(it) : std::next(it);
  }
}

void Execution::own_scan_finish(std::size_t i) {
  if (!own_) return;
  own_->store.read(main_, -1, own_->versions);
  own_->witness.read(main_, -1, own_->versions);
  own_scan_judge(i, own_->witness, "own_scan_rule", "the native witness (the tester's rule is wrong)");
  if (!failure_) own_scan_judge(i, own_->store, "own_scan", "the store");
  own_.reset();
}

void Execution::own_scan_judge(std::size_t i, const OpenScan& side, const char* kind, const char* who) {
  const std::string what = std::string("a scan on the writer's own connection, open since statement ") +
                           std::to_string(own_->started) + " across its statements: " + with_table(own_->sql, "s") +
                           " (" + who + ")";
  if (!side.error.empty() && own_->witness.error.empty()) {
    return fail(i, kind, what, "reads on without an error", side.error);
  }
  if (!side.bad_row.empty()) {
    return fail(i, kind, what, "every row a version the table held since the scan started",
                "read " + side.bad_row);
  }
  if (!side.error.empty()) return;
  for (const auto& [id, row] : own_->steady) {
    if (side.seen.count(id) == 0) {
      return fail(i, kind, what, "every row left unchanged since the start read, " + row, "id " + std::to_string(id) + " never read");
    }
  }
}

// A brand new connection in this process reads what the native table holds; true when it does (the reader
// process's new connection is asked next).
bool Execution::new_connection(std::size_t i) {
  if (!autocommit_) {
    skipped(i);
    return false;
  }
  compare_tables(i, "checkpoint before a new connection");
  if (failure_) return false;
  const Snapshot want = snapshot(oracle_, "ref", any_);
  Db fresh;
  try {
    fresh.db = open_db(":memory:", options_.extension);
  } catch (const std::exception& e) {
    fail(i, "new_connection", "open a new connection", want.digest(), e.what());
    return false;
  }
  Outcome o = exec(fresh.db, create_s_ + ")");
  if (o.code != 0) {
    fail(i, "new_connection", "a new connection: " + create_s_ + ")", want.digest(), o.describe(false));
    return false;
  }
  const Snapshot got = snapshot(fresh.db, "s", any_);
  if (got.digest() != want.digest()) {
    fail(i, "new_connection", "a new connection in this process reads the store", want.digest(),
         got.digest() + ";" + first_difference(want, got));
    return false;
  }
  return true;
}

// fresh: a new connection in the reader process; otherwise its long-lived one.
void Execution::ask_reader(std::size_t i, bool fresh) {
  // The reader's own connection is inside its scan's read transaction while a scan is open.
  if (!reader_ || (scan_open_ && !fresh)) return;
  const std::string reply = reader_->ask(fresh ? "fresh" : "check");
  const std::string what = std::string(fresh ? "a new connection" : "the reader's connection") +
                           " in another process" + (autocommit_ ? "" : ", the writer inside a transaction");
  if (reply.rfind("ok\t", 0) != 0) return fail(i, "reader", what, "the last committed state", reply);
  const auto [s, r] = reply_digests(reply);
  if (s != r) fail(i, "reader", what + " sees store vs native", r, s);
}

// The peer connection's rows with small ids (where the generator's ids collide and churn) against the oracle's
// last committed state, read through the same connection from ref.db.
void Execution::ask_peer(std::size_t i, const std::string& after) {
  if (!peer_ || failure_) return;
  const Snapshot s = snapshot(peer_, "s WHERE id <= 64", any_);
  const Snapshot r = snapshot(peer_, "r.ref WHERE id <= 64", any_);
  if (s.digest() != r.digest()) {
    fail(i, "peer", "another connection in this process reads ids 0..64 after: " + after +
                        (autocommit_ ? "" : " (the writer inside a transaction)"),
         r.digest(), s.digest() + ";" + first_difference(r, s));
  }
}

// The whole store against the oracle (and the witness).
void Execution::compare_tables(std::size_t i, const std::string& what) {
  const Snapshot want = snapshot(oracle_, "ref", any_);
  const Snapshot got = snapshot(main_, "s", any_);
  if (log_) log_file_query((*log_)[i], check_query("{t}", want.rows.size(), any_));
  if (want.digest() != got.digest()) {
    return fail(i, "digest", what, want.digest(), got.digest() + ";" + first_difference(want, got));
  }
  const Snapshot witness = snapshot(main_, "ref", any_);
  if (witness.digest() != want.digest()) {
    fail(i, "witness", what + " (the native table in the store's connection)", want.digest(),
         witness.digest() + ";" + first_difference(want, witness));
  }
}

void Execution::finish_scan(std::size_t i) {
  if (!scan_open_) return;
  scan_open_ = false;
  const std::string reply = reader_->ask("scan-finish");
  if (reply.rfind("ok\t", 0) != 0) {
    return fail(i, "reader", "another process finishes its scan of the store", "the rows committed when it started",
                reply);
  }
  const auto a = reply.find('\t', 3);
  const auto b = reply.find('\t', a + 1);
  const std::string got = reply.substr(3, a - 3), want = reply.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  if (got != want) {
    fail(i, "reader_scan", "a scan of the store in another process, open across writer statements (started at "
                           "the matching reader_scan start)", want, got + (b == std::string::npos ? "" : ";" + reply.substr(b + 1)));
  }
}

// The query a regression file runs at this step, and what it gives on each side.
void Execution::log_file_query(StepLog& step, const std::string& file_sql) {
  step.file_sql = file_sql;
  step.file_expected = one_line(oracle_, with_table(step.file_sql, "ref"));
  step.file_store = one_line(main_, with_table(step.file_sql, "s"));
}

// A meta statement not run here (inside a transaction, or a NULL id the native table cannot answer alike).
void Execution::skipped(std::size_t i) {
  if (log_) (*log_)[i].ran = false;
}

void Execution::fail(std::size_t i, std::string kind, std::string statement, std::string expected, std::string actual) {
  failure_ = Failure{i, std::move(kind), std::move(statement), std::move(expected), std::move(actual)};
}

}  // namespace

std::string Outcome::error_class() const {
  if (code == SQLITE_OK) return "ok";
  if (code == SQLITE_CONSTRAINT) return "CONSTRAINT";
  if (code == SQLITE_MISMATCH) return "MISMATCH";
  return "other";
}

std::string Outcome::describe(bool ordered) const {
  if (code != 0) return "error " + error_class() + " (" + std::to_string(extended) + "): " + message;
  return "ok: " + rows_text(rows, ordered) + " [changes " + std::to_string(changes) + ", " +
         (autocommit ? "autocommit" : "in a transaction") + "]";
}

std::string Snapshot::digest() const {
  if (!ok) return error;
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (const auto& [id, row] : rows) {
    for (const char c : row) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ull;
    h = (h ^ '\n') * 0x100000001b3ull;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%zu:%016" PRIx64, rows.size(), h);
  return buf;
}

Reader::Reader(const std::string& extension) {
  int down[2], up[2];
  if (::pipe(down) != 0 || ::pipe(up) != 0) throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::close(down[1]);
    ::close(up[0]);
    reader_main(down[0], up[1], extension);
  }
  ::close(down[0]);
  ::close(up[1]);
  to_child_ = down[1];
  from_child_ = up[0];
}

Reader::~Reader() {
  write_line(to_child_, "quit");
  ::close(to_child_);
  ::close(from_child_);
  int status = 0;
  ::waitpid(pid_, &status, 0);
}

std::string Reader::ask(const std::string& line) {
  write_line(to_child_, line);
  return read_line(from_child_);
}

std::string describe(const Failure& f) {
  return "statement " + std::to_string(f.index) + " [" + f.kind + "]: " + f.statement + "\n  native: " + f.expected +
         "\n  store:  " + f.actual;
}

std::optional<Failure> Runner::run(const Sequence& seq, std::vector<StepLog>* log) {
  TempDir dir(options_.keep_dir);
  const std::string store = dir.path + "/store" + store_suffix(options_.backend);
  const std::string create_s = "CREATE VIRTUAL TABLE s USING " + options_.backend + "(path=" + quote_path(store) +
                               (options_.shards > 0 ? ", shards=" + std::to_string(options_.shards) : "");
  Db oracle, main;
  oracle.db = open_db(dir.path + "/ref.db", options_.extension);
  must(oracle.db, "PRAGMA journal_mode=WAL");
  must(oracle.db, ref_schema(seq));
  main.db = open_db(dir.path + "/main.db", options_.extension);
  must(main.db, ref_schema(seq));
  must(main.db, create_s + ", shape='" + seq.shape + "')");
  Reader* reader = options_.reader;
  const ReaderClose reader_close{reader};
  if (reader) reader->ask("open " + options_.backend + " " + dir.path + " " + store + " " + seq.shape);
  Db peer;
  if (options_.peer) {
    std::string error;
    peer.db = reader_open(options_.extension, options_.backend, dir.path, store, error);
    if (!peer.db) throw std::runtime_error("cannot open the peer connection: " + error);
  }
  if (log) log->assign(seq.statements.size() + 1, StepLog{});
  return Execution(options_, oracle.db, main.db, peer.db, create_s, log, seq.any()).run(seq);
}

Sequence shrink(Runner& runner, const Sequence& sequence, const Failure& failure, int max_runs, bool keep_begin) {
  Sequence best = sequence;
  if (failure.index < best.statements.size()) best.statements.resize(failure.index + 1);
  int runs = 0;
  auto still_fails = [&](const Sequence& candidate) {
    ++runs;
    const auto f = runner.run(candidate);
    // The same kind of failure at the same statement text, so that shrinking does not drift to another defect.
    return f && f->kind == failure.kind && f->statement == failure.statement;
  };
  // The truncated sequence must still fail (the final check may have been the failure).
  if (!still_fails(best)) best = sequence;
  std::size_t chunks = 2;
  while (best.statements.size() >= 2 && runs < max_runs) {
    const std::size_t size = best.statements.size();
    const std::size_t chunk = (size + chunks - 1) / chunks;
    bool removed = false;
    for (std::size_t start = 0; start < size && runs < max_runs; start += chunk) {
      Sequence candidate = best;
      candidate.statements.clear();
      for (std::size_t k = 0; k < size; ++k) {
        const Statement& st = best.statements[k];
        const bool in_chunk = k >= start && k < start + chunk;
        if (!in_chunk || (keep_begin && st.kind == Kind::control && st.sql.rfind("BEGIN", 0) == 0)) {
          candidate.statements.push_back(st);
        }
      }
      if (candidate.statements.size() == size) continue;
      if (still_fails(candidate)) {
        best = candidate;
        removed = true;
        break;
      }
    }
    if (removed) {
      chunks = std::max<std::size_t>(chunks - 1, 2);
    } else if (chunk == 1) {
      break;
    } else {
      chunks = std::min(size, chunks * 2);
    }
  }
  if (best.statements.size() == 1 && runs < max_runs) {
    Sequence empty = best;
    empty.statements.clear();
    if (still_fails(empty)) best = empty;
  }
  return best;
}

namespace {

// The regression script of a sequence, from the log of one run: each step as sqltest.py runs it, with the
// native table's results as its expectations.
class ScriptWriter {
 public:
  ScriptWriter(Runner& runner, const Sequence& seq, const std::vector<StepLog>& log,
               const std::optional<Failure>& failure)
      : runner_(runner), seq_(seq), log_(log), failure_(failure) {}
  void header(const std::string& title);
  void step(std::size_t i);
  std::string text() const { return out_.str(); }

 private:
  void sql_statement(const Statement& st, const StepLog& step, bool failing);
  void after_failing_statement(const StepLog& step);
  void other_process_check(std::size_t i, const StepLog& step);
  void whole_table(const StepLog& step, const char* what);
  void expect(const std::string& expected, const std::string& file_sql);

  Runner& runner_;
  const Sequence& seq_;
  const std::vector<StepLog>& log_;
  const std::optional<Failure>& failure_;
  std::ostringstream out_;
};

void ScriptWriter::header(const std::string& title) {
  out_ << "-- " << title << "\n";
  out_ << "-- Written by model_test (tests/model): the native table's results are the expectations. shape "
       << seq_.shape << ".\n";
  if (failure_) {
    std::string d = describe(*failure_);
    for (std::size_t p = d.find('\n'); p != std::string::npos; p = d.find('\n', p + 1)) d.replace(p, 1, "\n--  ");
    out_ << "-- Failure at " << d << "\n";
  } else {
    out_ << "-- (this sequence passes now)\n";
  }
  out_ << "\nCREATE VIRTUAL TABLE s USING {module}(path='{path}', shape='" << seq_.shape << "');\n";
}

void ScriptWriter::step(std::size_t i) {
  const std::size_t n = seq_.statements.size();
  const Statement st = i < n ? seq_.statements[i] : Statement{Kind::check, ""};
  const StepLog& step = log_[i];
  const bool failing = failure_ && failure_->index == i;
  out_ << "\n";
  if (!step.ran) {
    out_ << "-- (" << kind_name(st.kind) << " skipped: inside a transaction)\n";
    return;
  }
  switch (st.kind) {
    case Kind::table:
    case Kind::control:
      sql_statement(st, step, failing);
      break;
    case Kind::check:
      whole_table(step, "checkpoint, the whole table");
      break;
    case Kind::reopen:
      out_ << "DROP TABLE s;\nCREATE VIRTUAL TABLE s USING {module}(path='{path}');\n";
      break;
    case Kind::reader_scan:
      out_ << "-- (model_test: another process " << (st.sql == "finish" ? "finishes its scan" : "starts a scan: " + st.sql) << ")\n";
      if (failing) out_ << "-- (not expressible in sqltest.py, which runs one sqlite3 process at a time)\n";
      break;
    case Kind::own_scan:
      out_ << "-- (model_test: this connection's own scan of the store: " << st.sql << ")\n";
      if (failing) out_ << "-- (not expressible in sqltest.py, which runs one statement at a time)\n";
      break;
    case Kind::new_connection:
    case Kind::reader:
      if (failing) other_process_check(i, step);
      break;
  }
  // A failing statement (an error on both sides) that left the tables different: the whole table after it.
  if (failing && failure_->kind == "digest" && (st.kind == Kind::table || st.kind == Kind::control)) {
    whole_table(step, "the whole table after it");
  }
}

// A table or control statement, with what the native table gave.
void ScriptWriter::sql_statement(const Statement& st, const StepLog& step, bool failing) {
  const std::string sql = st.kind == Kind::table ? with_table(st.sql, "s") : st.sql;
  if (failing) {
    out_ << "-- native: " << step.native.describe(st.ordered).substr(0, 300) << "\n";
    out_ << "-- store:  " << step.store.describe(st.ordered).substr(0, 300) << "\n";
  }
  if (step.native.code != 0) {
    // sqlite3 prints the extended code in parentheses; the store reports plain 19 or 20.
    const int code = step.native.code;
    out_ << "-- error: " << (code == SQLITE_CONSTRAINT || code == SQLITE_MISMATCH ? "(" + std::to_string(code) + ")" : "")
         << "\n" << sql << ";\n";
  } else if (!step.file_sql.empty() && st.query) {
    expect(step.file_expected, step.file_sql);
  } else if (st.kind == Kind::table && st.query && step.native.rows.empty()) {
    out_ << "-- expect: (none)\n" << sql << ";\n";
  } else {
    out_ << sql << ";\n";
  }
  if (failing) after_failing_statement(step);
}

// What the failure was about, checked right after the failing statement.
void ScriptWriter::after_failing_statement(const StepLog& step) {
  if (failure_->kind == "changes") {
    out_ << "-- expect: " << step.native.changes << "\nSELECT changes();\n";
  }
  if (failure_->kind == "autocommit" || failure_->kind == "witness") {
    if (step.native.autocommit) {
      out_ << "-- (no transaction is open now: BEGIN must work)\nBEGIN;\nROLLBACK;\n";
    } else {
      out_ << "-- (a transaction is still open)\n-- error: within a transaction\nBEGIN;\n";
    }
  }
}

void ScriptWriter::other_process_check(std::size_t i, const StepLog& step) {
  out_ << "-- model_test checked here that another process (its own connection, open while this one was "
       << (step.autocommit_before ? "outside a" : "inside a") << " transaction) sees the last committed state.\n";
  if (!step.autocommit_before) {
    out_ << "-- (not expressible in sqltest.py, which runs one sqlite3 process at a time)\n";
    return;
  }
  out_ << "-- The same check from a new sqlite3 process (this one closed first):\n-- process\n";
  Sequence head = seq_;
  head.statements.resize(i);
  std::vector<StepLog> head_log;
  runner_.run(head, &head_log);
  const StepLog& end = head_log.back();
  expect(end.file_expected, end.file_sql);
}

void ScriptWriter::whole_table(const StepLog& step, const char* what) {
  if (step.file_sql.empty()) return;
  out_ << "-- " << what << ": native " << step.file_expected.substr(0, 200) << "\n";
  if (step.file_store != step.file_expected) out_ << "--   store gives: " << step.file_store.substr(0, 300) << "\n";
  expect(step.file_expected, step.file_sql);
}

void ScriptWriter::expect(const std::string& expected, const std::string& file_sql) {
  out_ << "-- expect: " << expected << "\n" << with_table(file_sql, "s") << ";\n";
}

}  // namespace

std::string regression_script(Runner& runner, const Sequence& seq, const std::string& title) {
  std::vector<StepLog> log;
  const auto failure = runner.run(seq, &log);
  ScriptWriter script(runner, seq, log, failure);
  script.header(title);
  const std::size_t n = seq.statements.size();
  const std::size_t last = failure ? std::min(failure->index, n) : n;
  for (std::size_t i = 0; i <= last; ++i) script.step(i);
  return script.text();
}

}  // namespace model
