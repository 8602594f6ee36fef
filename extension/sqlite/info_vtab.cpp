// imgstore_info(table [, schema]): what a store table holds, as SQLite's own pragma_table_info('t') tells a
// table's columns. One row:
//
//   SELECT backend, shape, count FROM imgstore_info('train');            -- lmdb|32x32x3|50000
//   SELECT height, width, channels FROM imgstore_info('train', 'temp');
//
// The table is found as an unqualified name would be (temp, main, then attached databases) unless a schema is
// given; a table of a persistent database that no statement has used yet is connected first. count is exact.

#include "vtab.hpp"
#include "vtab_common.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

using namespace vtab_detail;

constexpr const char* kInfoSchema =
    "CREATE TABLE x(name TEXT, backend TEXT, path TEXT, shape TEXT, height INTEGER, width INTEGER, "
    "channels INTEGER, count INTEGER, \"table\" HIDDEN, schema HIDDEN)";
enum InfoColumn { kName, kBackend, kPath, kShape, kHeight, kWidth, kChannels, kCount, kTableArg, kSchemaArg };

struct InfoTable {
  sqlite3_vtab base{};
  sqlite3* db = nullptr;
};

struct InfoCursor {
  sqlite3_vtab_cursor base{};
  std::optional<StoreInfo> row;
  bool done = true;
};

InfoCursor& info_cursor_of(sqlite3_vtab_cursor* cur) { return *reinterpret_cast<InfoCursor*>(cur); }

int info_connect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char** err) noexcept {
  try {
    const int rc = sqlite3_declare_vtab(db, kInfoSchema);
    if (rc != SQLITE_OK) return rc;
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);  // it reads a store (its count)
    auto table = std::make_unique<InfoTable>();
    table->db = db;
    *out = &table.release()->base;
    return SQLITE_OK;
  } catch (...) {
    return to_sqlite(err);
  }
}

// The table argument is required (a plan without it is refused, so SQLite finds one with it); schema is not.
// idxNum bit 1: the schema is given (argv[1]).
int info_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) noexcept {
  return guarded(vtab, [&] {
    int table_arg = -1;
    int schema_arg = -1;
    for (int i = 0; i < info->nConstraint; ++i) {
      const auto& c = info->aConstraint[i];
      if (c.op != SQLITE_INDEX_CONSTRAINT_EQ || (c.iColumn != kTableArg && c.iColumn != kSchemaArg)) continue;
      if (!c.usable) return SQLITE_CONSTRAINT;
      (c.iColumn == kTableArg ? table_arg : schema_arg) = i;
    }
    if (table_arg < 0) return SQLITE_CONSTRAINT;
    info->aConstraintUsage[table_arg].argvIndex = 1;
    info->aConstraintUsage[table_arg].omit = 1;
    info->idxNum = 0;
    if (schema_arg >= 0) {
      info->aConstraintUsage[schema_arg].argvIndex = 2;
      info->aConstraintUsage[schema_arg].omit = 1;
      info->idxNum = 1;
    }
    info->estimatedCost = 1.0;
    info->estimatedRows = 1;
    return SQLITE_OK;
  });
}

std::string text_of(sqlite3_value* value) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_value_text(value));
  return text == nullptr ? std::string() : std::string(text, static_cast<std::size_t>(sqlite3_value_bytes(value)));
}

// Connects a table of a persistent database that no statement has used yet (SQLite connects virtual tables
// when a statement names them), and reports SQLite's own error for a table that does not exist.
void connect_by_name(sqlite3* db, const std::string& schema, const std::string& name) {
  char* sql = schema.empty() ? sqlite3_mprintf("SELECT 0 FROM \"%w\"", name.c_str())
                             : sqlite3_mprintf("SELECT 0 FROM \"%w\".\"%w\"", schema.c_str(), name.c_str());
  if (sql == nullptr) throw std::bad_alloc();
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
  sqlite3_free(sql);
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) throw Error("imgstore_info(): " + std::string(sqlite3_errmsg(db)));
}

int info_filter(sqlite3_vtab_cursor* cur, int plan, const char*, int argc, sqlite3_value** argv) noexcept {
  return guarded(cur->pVtab, [&] {
    sqlite3* db = reinterpret_cast<InfoTable*>(cur->pVtab)->db;
    auto& cursor = info_cursor_of(cur);
    const std::string name = argc > 0 ? text_of(argv[0]) : std::string();
    const std::string schema = (plan & 1) != 0 && argc > 1 ? text_of(argv[1]) : std::string();
    cursor.row = find_store_table(db, schema, name);
    if (!cursor.row) {
      connect_by_name(db, schema, name);
      cursor.row = find_store_table(db, schema, name);
    }
    if (!cursor.row) {
      throw Error("imgstore_info(): table '" + name +
                  "' is not a store table; expected a table of module lmdb, hdf5, png_dir or imgstore");
    }
    cursor.done = false;
    return SQLITE_OK;
  });
}

int info_next(sqlite3_vtab_cursor* cur) noexcept {
  info_cursor_of(cur).done = true;
  return SQLITE_OK;
}

int info_eof(sqlite3_vtab_cursor* cur) noexcept { return info_cursor_of(cur).done ? 1 : 0; }

int info_rowid(sqlite3_vtab_cursor*, sqlite3_int64* rowid) noexcept {
  *rowid = 1;
  return SQLITE_OK;
}

void result_text(sqlite3_context* ctx, const std::string& text) {
  sqlite3_result_text64(ctx, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

int info_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int column) noexcept {
  return guarded(cur->pVtab, [&] {
    const StoreInfo& row = *info_cursor_of(cur).row;
    switch (column) {
      case kName: case kTableArg: result_text(ctx, row.name); break;
      case kBackend: result_text(ctx, row.backend); break;
      case kPath: result_text(ctx, row.path); break;
      case kShape: result_text(ctx, row.shape.str()); break;
      // NULL for a store of shape 'any': each row has its own (the table's hidden columns say them).
      case kHeight: if (!row.shape.any) sqlite3_result_int64(ctx, row.shape.height); break;
      case kWidth: if (!row.shape.any) sqlite3_result_int64(ctx, row.shape.width); break;
      case kChannels: if (!row.shape.any) sqlite3_result_int64(ctx, row.shape.channels); break;
      case kCount: sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(row.count)); break;
      case kSchemaArg: result_text(ctx, row.schema); break;
      default: break;
    }
    return SQLITE_OK;
  });
}

constexpr sqlite3_module kInfoModule = {
    /* iVersion    */ 1,
    /* xCreate     */ nullptr,  // eponymous-only
    /* xConnect    */ info_connect,
    /* xBestIndex  */ info_best_index,
    /* xDisconnect */ table_disconnect<InfoTable>,
    /* xDestroy    */ table_disconnect<InfoTable>,
    /* xOpen       */ cursor_open<InfoCursor>,
    /* xClose      */ [](sqlite3_vtab_cursor* cur) noexcept {
      delete reinterpret_cast<InfoCursor*>(cur);
      return SQLITE_OK;
    },
    /* xFilter     */ info_filter,
    /* xNext       */ info_next,
    /* xEof        */ info_eof,
    /* xColumn     */ info_column,
    /* xRowid      */ info_rowid,
    /* xUpdate     */ nullptr,
    /* xBegin      */ nullptr,
    /* xSync       */ nullptr,
    /* xCommit     */ nullptr,
    /* xRollback   */ nullptr,
    /* xFindFunction */ nullptr,
    /* xRename     */ nullptr,
    /* xSavepoint  */ nullptr,
    /* xRelease    */ nullptr,
    /* xRollbackTo */ nullptr,
    /* xShadowName */ nullptr,
};

}  // namespace

int register_info_module(sqlite3* db) {
  return sqlite3_create_module_v2(db, "imgstore_info", &kInfoModule, nullptr, nullptr);
}

}  // namespace imgstore
