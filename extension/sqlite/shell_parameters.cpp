#include "shell_parameters.hpp"

#include <optional>

#include "args.hpp"
#include "error.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

bool is_parameter(const std::string& value) {
  return value.size() >= 2 && (value[0] == '@' || value[0] == ':' || value[0] == '$');
}

std::optional<std::string> parameter_value(sqlite3* db, const std::string& name) {
  std::optional<std::string> value;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT value FROM temp.sqlite_parameters WHERE key = ?1", -1, &stmt, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(stmt, 1, name.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_type(stmt, 0) != SQLITE_NULL) {
      value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
  }
  sqlite3_finalize(stmt);  // no table yet (no .parameter ever set) is "not set", like an unset row
  return value;
}

std::string quoted(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

std::vector<std::string> resolve_shell_parameters(sqlite3* db, const std::string& schema, const std::string& table,
                                                  std::vector<std::string> args) {
  for (auto& arg : args) {
    const auto split = split_argument(arg);
    if (!split || !is_parameter(split->second)) continue;
    const std::string& name = split->second;
    if (schema != "temp") {
      throw Error("table " + table + ": argument " + split->first + "=" + name + " names a shell parameter, which "
                  "only a temp table may use (a stored schema must mean the same store in every session); expected "
                  "CREATE VIRTUAL TABLE temp." + table + " or a literal value");
    }
    const auto value = parameter_value(db, name);
    if (!value) {
      throw Error("table " + table + ": argument " + split->first + "=" + name + " names a parameter that is not set; "
                  "expected e.g. .parameter set " + name + " '...'");
    }
    arg = split->first + "=" + quoted(*value);
  }
  return args;
}

}  // namespace imgstore
