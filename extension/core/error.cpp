#include "error.hpp"

namespace imgstore {

// Numeric values of SQLite's primary result codes (stable ABI), so this file needs no sqlite header.
int sqlite_code(ErrorKind kind) noexcept {
  switch (kind) {
    case ErrorKind::generic: return 1;      // SQLITE_ERROR
    case ErrorKind::busy: return 5;         // SQLITE_BUSY
    case ErrorKind::nomem: return 7;        // SQLITE_NOMEM
    case ErrorKind::readonly: return 8;     // SQLITE_READONLY
    case ErrorKind::corrupt: return 11;     // SQLITE_CORRUPT
    case ErrorKind::full: return 13;        // SQLITE_FULL
    case ErrorKind::cantopen: return 14;    // SQLITE_CANTOPEN
    case ErrorKind::constraint: return 19;  // SQLITE_CONSTRAINT
    case ErrorKind::mismatch: return 20;    // SQLITE_MISMATCH
  }
  return 1;
}

}  // namespace imgstore
