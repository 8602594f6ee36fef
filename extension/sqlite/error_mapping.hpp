// The one exception ladder of the SQLite layer: every callback (vtab.cpp's trampolines, functions.cpp's
// functions) catches everything and asks this for the SQLite result code and message of the exception in
// flight, so an Error's kind maps the same way everywhere (ErrorKind -> code in core/error.cpp).
#pragma once

#include <exception>
#include <new>
#include <string>

#include "error.hpp"
#include "sqlite3ext.h"

namespace imgstore {

struct SqliteError {
  int code = SQLITE_ERROR;
  std::string message;  // empty for SQLITE_NOMEM
};

// Call only inside a catch block. Never throws (out of memory while copying a message gives SQLITE_NOMEM).
inline SqliteError current_sqlite_error() noexcept {
  try {
    throw;
  } catch (const Error& e) {
    try {
      return {sqlite_code(e.kind()), e.what()};
    } catch (...) {
      return {SQLITE_NOMEM, {}};
    }
  } catch (const std::bad_alloc&) {
    return {SQLITE_NOMEM, {}};
  } catch (const std::exception& e) {
    try {
      return {SQLITE_ERROR, e.what()};
    } catch (...) {
      return {SQLITE_NOMEM, {}};
    }
  } catch (...) {
    return {SQLITE_ERROR, "unknown error"};
  }
}

}  // namespace imgstore
