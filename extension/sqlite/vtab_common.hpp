// The trampoline machinery shared by the two virtual-table adapters (store tables in vtab.cpp, source
// functions in source_vtab.cpp): the exception guard every callback runs in, the cursor callbacks both
// kinds of table share, and the columns they yield. Only the SQLite layer includes it.
#pragma once

#include <memory>

#include "error_mapping.hpp"
#include "sqlite3ext.h"
#include "store.hpp"

SQLITE_EXTENSION_INIT3  // the API table's declaration: the inline functions below call SQLite through it

namespace imgstore::vtab_detail {

inline constexpr int kColId = 0;
inline constexpr int kColLabel = 1;
inline constexpr int kColPixels = 2;

// Error mapping: one place turns any exception into (code, message).

inline int to_sqlite(char** message_out) noexcept {
  const SqliteError error = current_sqlite_error();
  if (error.code == SQLITE_NOMEM) return SQLITE_NOMEM;
  if (message_out != nullptr) {
    sqlite3_free(*message_out);
    *message_out = sqlite3_mprintf("%s", error.message.c_str());
  }
  return error.code;
}

// Runs `body` and maps any exception onto the vtab's error message.
template <typename Body>
int guarded(sqlite3_vtab* vtab, Body&& body) noexcept {
  try {
    return body();
  } catch (...) {
    return to_sqlite(&vtab->zErrMsg);
  }
}

// xDisconnect of a table struct T that holds `base` first and owns nothing that can fail to close.
template <typename T>
int table_disconnect(sqlite3_vtab* vtab) noexcept {
  const std::unique_ptr<T> owned(reinterpret_cast<T*>(vtab));
  return SQLITE_OK;
}

// Cursor callbacks shared by store and source tables: both cursors hold `base` first and their rows in `rows`.
template <typename C>
int cursor_open(sqlite3_vtab*, sqlite3_vtab_cursor** out) noexcept {
  try {
    auto cursor = std::make_unique<C>();
    *out = &cursor.release()->base;
    return SQLITE_OK;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

template <typename C>
int cursor_close(sqlite3_vtab_cursor* cur) noexcept {
  const std::unique_ptr<C> owned(reinterpret_cast<C*>(cur));
  try {
    owned->rows.reset();
  } catch (...) {
    // Closing never reports: the cursor is gone either way.
  }
  return SQLITE_OK;
}

template <typename C>
int cursor_next(sqlite3_vtab_cursor* cur) noexcept {
  return guarded(cur->pVtab, [&] {
    reinterpret_cast<C*>(cur)->rows->next();
    return SQLITE_OK;
  });
}

template <typename C>
int cursor_eof(sqlite3_vtab_cursor* cur) noexcept {
  const auto& rows = reinterpret_cast<C*>(cur)->rows;
  return rows == nullptr || rows->at_end() ? 1 : 0;
}

template <typename C>
int cursor_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) noexcept {
  return guarded(cur->pVtab, [&] {
    *rowid = reinterpret_cast<C*>(cur)->rows->id();
    return SQLITE_OK;
  });
}


// Shared by store and source cursors: they yield the same three columns.
inline int row_column(Cursor& rows, sqlite3_context* ctx, int column) {
  switch (column) {
    case kColId:
      sqlite3_result_int64(ctx, rows.id());
      break;
    case kColLabel:
      // An UPDATE that does not set it reads it from the store when it writes the row (vtab.cpp, update_row).
      if (sqlite3_vtab_nochange(ctx) != 0) break;
      sqlite3_result_int64(ctx, rows.label());
      break;
    case kColPixels: {
      // UPDATE ... SET label = ? does not need the pixels: leave them unread.
      if (sqlite3_vtab_nochange(ctx) != 0) break;
      const auto pixels = rows.pixels();
      // TRANSIENT: the view points into backend memory (an LMDB map, a reused buffer) that the next row reuses.
      sqlite3_result_blob64(ctx, pixels.data(), pixels.size(), SQLITE_TRANSIENT);
      break;
    }
    default:
      break;
  }
  return SQLITE_OK;
}

template <typename T>
void destroy_aux(void* p) {
  const std::unique_ptr<T> owned(static_cast<T*>(p));
}

}  // namespace imgstore::vtab_detail
