// The one exception type of the extension. Backends throw it; vtab.cpp and the function wrappers catch
// everything at the SQLite boundary and turn it into an SQLite result code plus message.
#pragma once

#include <stdexcept>
#include <string>

namespace imgstore {

enum class ErrorKind {
  generic,     // SQLITE_ERROR
  constraint,  // SQLITE_CONSTRAINT: duplicate id and the like (lets OR IGNORE / OR REPLACE work)
  mismatch,    // SQLITE_MISMATCH: a value of the wrong type or size
  busy,        // SQLITE_BUSY: another writer holds the store
  full,        // SQLITE_FULL: disk or map full
  corrupt,     // SQLITE_CORRUPT: the store's bytes are not what we wrote
  cantopen,    // SQLITE_CANTOPEN: a path that cannot be opened as a store
  nomem,       // SQLITE_NOMEM
  readonly,    // SQLITE_READONLY: a store that may be read but not written (read-only mount, no permission)
};

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, ErrorKind kind = ErrorKind::generic)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }

 private:
  ErrorKind kind_;
};

// Maps an ErrorKind to the SQLite result code (kept here so units can test it without sqlite3.h).
int sqlite_code(ErrorKind kind) noexcept;

}  // namespace imgstore
