// What every SQL function of the extension (functions.cpp, image_functions.cpp) shares: the guard that keeps
// exceptions out of SQLite, and the argument readers whose errors name the function and the argument.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "error.hpp"
#include "error_mapping.hpp"
#include "sqlite3ext.h"

SQLITE_EXTENSION_INIT3  // the API table's declaration: the inline functions below call SQLite through it

namespace imgstore {

// Runs body and turns any exception into an SQL error on ctx: no exception crosses into SQLite.
template <typename Body>
void guarded(sqlite3_context* ctx, Body&& body) noexcept {
  try {
    body();
  } catch (...) {
    const SqliteError error = current_sqlite_error();
    if (error.code == SQLITE_NOMEM) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
    sqlite3_result_error(ctx, error.message.c_str(), -1);
    sqlite3_result_error_code(ctx, error.code);
  }
}

inline std::span<const std::uint8_t> blob_arg(sqlite3_value* v, const char* fn, const char* name) {
  if (sqlite3_value_type(v) != SQLITE_BLOB) {
    throw Error(std::string(fn) + "(): " + name + " must be a blob", ErrorKind::mismatch);
  }
  return {static_cast<const std::uint8_t*>(sqlite3_value_blob(v)), static_cast<std::size_t>(sqlite3_value_bytes(v))};
}

inline std::string text_arg(sqlite3_value* v, const char* fn, const char* name) {
  if (sqlite3_value_type(v) != SQLITE_TEXT) {
    throw Error(std::string(fn) + "(): " + name + " must be text", ErrorKind::mismatch);
  }
  return {reinterpret_cast<const char*>(sqlite3_value_text(v)), static_cast<std::size_t>(sqlite3_value_bytes(v))};
}

inline bool any_null(int argc, sqlite3_value** argv) {
  for (int i = 0; i < argc; ++i) {
    if (sqlite3_value_type(argv[i]) == SQLITE_NULL) return true;
  }
  return false;
}

inline void result_bytes(sqlite3_context* ctx, const std::vector<std::uint8_t>& bytes) {
  sqlite3_result_blob64(ctx, bytes.data(), bytes.size(), SQLITE_TRANSIENT);
}

}  // namespace imgstore
