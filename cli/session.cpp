#include "session.hpp"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace imgbench {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// True when the text holds nothing but whitespace and -- comments.
bool only_comments(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const std::string t = trim(line);
    if (!t.empty() && t.rfind("--", 0) != 0) return false;
  }
  return true;
}

}  // namespace

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

bool drop_page_cache() {
  ::sync();
  std::ofstream out("/proc/sys/vm/drop_caches");
  if (!out) return false;
  out << "3\n";  // pages, dentries and inodes: a png_dir read opens a file per image
  out.flush();
  return static_cast<bool>(out);
}

Statement prepare(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr);
  Statement stmt(raw);
  if (rc != SQLITE_OK) throw std::runtime_error("cannot prepare '" + sql + "': " + sqlite3_errmsg(db));
  if (!stmt) throw std::runtime_error("cannot prepare '" + sql + "': it holds no statement");
  return stmt;
}

namespace {

// The extension as given: SQLite would also try PATH.so and report that name's error ('x.so.so'), and
// dlopen would search the library path for a name without a slash. So the file is found and opened here
// first, and a failure names the path the user gave.
std::string loadable(const std::string& given) {
  namespace fs = std::filesystem;
  std::string path = given.find('/') == std::string::npos ? "./" + given : given;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) && fs::is_regular_file(path + ".so", ec)) path += ".so";
  if (!fs::is_regular_file(path, ec)) throw std::runtime_error("cannot load the extension '" + given + "': no such file");
  void* const handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) throw std::runtime_error("cannot load the extension '" + given + "': " + ::dlerror());
  ::dlclose(handle);
  return path;
}

}  // namespace

Session::Session(const std::string& extension_path) {
  const std::string extension = loadable(extension_path);
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open(":memory:", &raw);
  db_.reset(raw);  // owned even when the open failed: a failed open still allocates a handle
  if (rc != SQLITE_OK) throw std::runtime_error("cannot open an SQLite connection");
  sqlite3* const db = db_.get();
  sqlite3_enable_load_extension(db, 1);
  char* err = nullptr;
  if (sqlite3_load_extension(db, extension.c_str(), "sqlite3_imgstore_init", &err) != SQLITE_OK) {
    const std::string message = err != nullptr ? err : "unknown error";
    sqlite3_free(err);
    throw std::runtime_error("cannot load the extension '" + extension + "': " + message);
  }
  // The parameter table of the sqlite3 shell, created the way the shell does (its name is reserved).
  int defensive = 0;
  int writable = 0;
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, -1, &defensive);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 0, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, 1, &writable);
  const char* const create = "CREATE TABLE IF NOT EXISTS temp.sqlite_parameters(key TEXT PRIMARY KEY, value) WITHOUT ROWID;";
  const int created = sqlite3_exec(db, create, nullptr, nullptr, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_WRITABLE_SCHEMA, writable, nullptr);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, defensive, nullptr);
  if (created != SQLITE_OK) throw std::runtime_error(std::string("cannot run '") + create + "': " + sqlite3_errmsg(db));
  // The progress display and --timeout. A deadline checked here, rather than sqlite3_interrupt() from a watchdog
  // thread, needs no thread and stops a statement at the same points (between VM instructions; neither can
  // cut short one long call into the extension). Returning 1 ends the statement with SQLITE_INTERRUPT.
  sqlite3_progress_handler(
      db, 20000,
      [](void* self) -> int {
        auto* s = static_cast<Session*>(self);
        const double now = now_seconds();
        if (s->on_progress) s->on_progress(s->current_label_, now - s->started_);
        if (s->deadline_ > 0 && now >= s->deadline_) {
          s->timed_out_ = true;
          return 1;
        }
        return 0;
      },
      this);
}

namespace {

std::string parameter_key(const std::string& name) {
  return name.empty() || name[0] == '@' || name[0] == ':' || name[0] == '$' ? name : "@" + name;
}

// Steps the REPLACE of a parameter whose key and value are bound.
void store_parameter(sqlite3* db, sqlite3_stmt* stmt, const std::string& key) {
  if (sqlite3_step(stmt) != SQLITE_DONE) throw std::runtime_error("cannot set parameter " + key + ": " + sqlite3_errmsg(db));
}

constexpr const char* kSetParameter = "REPLACE INTO temp.sqlite_parameters(key, value) VALUES (?1, ?2)";

}  // namespace

void Session::set_param(const std::string& name, const std::string& value) {
  const std::string key = parameter_key(name);
  const Statement stmt = prepare(db(), kSetParameter);
  sqlite3_bind_text(stmt.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
  char* end = nullptr;
  const long long as_int = std::strtoll(value.c_str(), &end, 10);
  if (!value.empty() && end != nullptr && *end == '\0') {
    sqlite3_bind_int64(stmt.get(), 2, as_int);
  } else if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'') {
    // An SQL string literal, as the shell reads it: '' inside stands for one quote ('it''s.lmdb').
    std::string text;
    for (std::size_t i = 1; i + 1 < value.size(); ++i) {
      text += value[i];
      if (value[i] == '\'' && i + 2 < value.size() && value[i + 1] == '\'') ++i;
    }
    sqlite3_bind_text(stmt.get(), 2, text.c_str(), -1, SQLITE_TRANSIENT);
  } else {
    sqlite3_bind_text(stmt.get(), 2, value.c_str(), -1, SQLITE_TRANSIENT);
  }
  store_parameter(db(), stmt.get(), key);
}

void Session::set_text_param(const std::string& name, const std::string& value) {
  const std::string key = parameter_key(name);
  const Statement stmt = prepare(db(), kSetParameter);
  sqlite3_bind_text(stmt.get(), 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(stmt.get(), 2, value.c_str(), -1, SQLITE_TRANSIENT);
  store_parameter(db(), stmt.get(), key);
}

void Session::bind_parameters(sqlite3_stmt* stmt) {
  const int n = sqlite3_bind_parameter_count(stmt);
  if (n == 0) return;
  // Fails when a script dropped temp.sqlite_parameters: an error, not silently unbound parameters.
  const Statement lookup = prepare(db(), "SELECT value FROM temp.sqlite_parameters WHERE key = ?1");
  for (int i = 1; i <= n; ++i) {
    const char* name = sqlite3_bind_parameter_name(stmt, i);
    if (name == nullptr) continue;
    sqlite3_reset(lookup.get());
    sqlite3_bind_text(lookup.get(), 1, name, -1, SQLITE_STATIC);
    const int rc = sqlite3_step(lookup.get());
    if (rc == SQLITE_ROW) {
      sqlite3_bind_value(stmt, i, sqlite3_column_value(lookup.get(), 0));
    } else if (rc == SQLITE_DONE) {
      // The shell would bind NULL, and the error would come later from whatever got the NULL, naming
      // an argument instead of the parameter that was forgotten.
      throw std::runtime_error(std::string("parameter ") + name + " is not set (imgbench -p " + (name + 1) + "=VALUE, or .parameter set " + name + " VALUE)");
    } else {
      throw std::runtime_error(std::string("cannot read parameter ") + name + ": " + sqlite3_errmsg(db()));
    }
  }
}

std::string Session::query_text(const std::string& sql) {
  const Statement stmt = prepare(db(), sql);
  bind_parameters(stmt.get());
  std::string out;
  const int rc = sqlite3_step(stmt.get());
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt.get(), 0) != SQLITE_NULL) {
    out = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error(sql + ": " + sqlite3_errmsg(db()));
  return out;
}

void Session::dot_command(const std::string& line, const std::string& where) {
  std::istringstream in(line);
  std::string command;
  in >> command;
  if (command == ".parameter" || command == ".param") {
    std::string verb;
    std::string key;
    in >> verb >> key;
    std::string value;
    std::getline(in, value);
    if (verb == "set") {
      try {
        set_param(key, trim(value));
      } catch (const std::runtime_error& e) {
        throw std::runtime_error(where + ": " + e.what());
      }
      return;
    }
    if (verb == "init" || verb == "list") return;
  }
  // Shell settings that do not change what a script computes.
  if (command == ".load" || command == ".timer" || command == ".headers" || command == ".mode" || command == ".bail" ||
      command == ".echo" || command == ".print") {
    return;
  }
  throw std::runtime_error(where + ": imgbench does not run the shell command '" + command +
                           "' (it understands .parameter set and ignores .load, .timer, .headers, .mode, .bail, .print)");
}

namespace {

// Seconds as the user would write them: 5, 0.5.
std::string seconds_text(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

// A statement's text in one line of an error message: the first 120 characters.
std::string abbreviated(const std::string& sql) { return sql.size() <= 120 ? sql : sql.substr(0, 117) + "..."; }

}  // namespace

StatementRun Session::execute(sqlite3_stmt* stmt, const std::string& where, const std::string& sql) {
  try {
    bind_parameters(stmt);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
  StatementRun run;
  started_ = now_seconds();
  deadline_ = timeout > 0 ? started_ + timeout : 0;
  timed_out_ = false;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (run.rows++ == 0) {
      for (int c = 0; c < sqlite3_column_count(stmt); ++c) {
        if (c > 0) run.first_row += "|";
        const auto* text = sqlite3_column_text(stmt, c);
        run.first_row += text != nullptr ? reinterpret_cast<const char*>(text) : "";
      }
    }
  }
  run.seconds = now_seconds() - started_;
  deadline_ = 0;
  if (rc != SQLITE_DONE && timed_out_) {
    throw std::runtime_error(where + ": statement interrupted after " + seconds_text(timeout) + " s (--timeout " +
                             seconds_text(timeout) + "): " + abbreviated(sql));
  }
  if (rc != SQLITE_DONE) throw std::runtime_error(where + ": " + sqlite3_errmsg(db()));
  return run;
}

std::vector<StatementRun> Session::run_script(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read script '" + path + "'");
  return run_stream(in, path);
}

std::vector<StatementRun> Session::run_text(const std::string& sql, const std::string& name) {
  std::istringstream in(sql);
  return run_stream(in, name);
}

namespace {

// Lines before a statement's first line holding more than a comment: where an error says it is.
int leading_comment_lines(const std::string& piece) {
  int n = 0;
  std::istringstream lines(piece);
  for (std::string l; std::getline(lines, l); ++n) {
    const std::string t = trim(l);
    if (!t.empty() && t.rfind("--", 0) != 0) break;
  }
  return n;
}

struct Labelled {
  std::string label;  // the last "-- measure: NAME" before the statement
  bool cold = false;  // "-- measure: NAME cold"
  std::string sql;    // the statement's lines without comments, trimmed, joined by spaces
};

Labelled labelled(const std::string& piece) {
  Labelled out;
  std::istringstream lines(piece);
  for (std::string l; std::getline(lines, l);) {
    const std::string t = trim(l);
    if (t.rfind("-- measure:", 0) == 0) {
      std::istringstream words(t.substr(11));
      words >> out.label;
      std::string flag;
      out.cold = static_cast<bool>(words >> flag) && flag == "cold";
    } else if (!t.empty() && t.rfind("--", 0) != 0) {
      out.sql += (out.sql.empty() ? "" : " ") + t;
    }
  }
  return out;
}

}  // namespace

std::vector<StatementRun> Session::run_stream(std::istream& in, const std::string& path) {
  std::vector<StatementRun> runs;
  std::string buffer;
  std::string line;
  int line_no = 0;
  int start_line = 1;  // the line buffer[0] is on
  int index = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (only_comments(buffer) && !line.empty() && line[0] == '.') {
      dot_command(line, path + ":" + std::to_string(line_no));
      buffer.clear();
      continue;
    }
    if (buffer.empty()) start_line = line_no;
    buffer += line + "\n";
    if (only_comments(buffer) || !sqlite3_complete(buffer.c_str())) continue;
    // The buffer ends a statement but may hold several ("CREATE ...; INSERT ...;" on one line): prepare one
    // at a time, each after the previous one ran (it may use a table the previous one made), walking pzTail.
    const char* pos = buffer.c_str();
    while (*pos != '\0') {
      sqlite3_stmt* raw = nullptr;
      const char* tail = nullptr;
      const int rc = sqlite3_prepare_v2(db(), pos, -1, &raw, &tail);
      const Statement stmt(raw);
      const std::string piece(pos, tail != nullptr ? tail : pos + std::strlen(pos));
      const int at = start_line + static_cast<int>(std::count(buffer.c_str(), pos, '\n')) + leading_comment_lines(piece);
      const std::string where = path + ":" + std::to_string(at);
      if (rc != SQLITE_OK) throw std::runtime_error(where + ": " + sqlite3_errmsg(db()));
      if (!stmt) break;  // only whitespace and comments are left
      const Labelled text = labelled(piece);
      current_label_ = text.label.empty() ? text.sql.substr(0, 40) : text.label;
      const bool dropped = text.cold && drop_page_cache();
      StatementRun run = execute(stmt.get(), where, text.sql);
      run.script = path;
      run.index = ++index;
      run.label = text.label;
      run.cold = text.cold;
      run.cache_dropped = dropped;
      run.sql = text.sql;
      runs.push_back(std::move(run));
      pos = tail;
    }
    // Comments after the last statement: a "-- measure:" among them labels the next statement, so they stay.
    const std::string rest(pos);
    start_line += static_cast<int>(std::count(buffer.c_str(), pos, '\n'));
    buffer = rest.find("-- measure:") != std::string::npos ? rest : std::string();
  }
  if (!only_comments(buffer)) throw std::runtime_error(path + ":" + std::to_string(start_line) + ": incomplete statement at the end");
  return runs;
}

}  // namespace imgbench
