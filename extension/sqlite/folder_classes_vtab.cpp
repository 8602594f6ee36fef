// image_folder_classes(root): the classes image_folder(root) numbers, one row each, as torchvision's
// ImageFolder(root).classes and .class_to_idx give them (an empty class is listed: it keeps its label).
//
//   SELECT label, class FROM image_folder_classes('photos');          -- 0|cat, 1|dog
//   SELECT c.class, count(*) FROM image_folder('photos') JOIN image_folder_classes('photos') AS c USING (label)
//     GROUP BY label;

#include "folder_walk.hpp"
#include "sources.hpp"
#include "vtab_common.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

using namespace vtab_detail;

constexpr const char* kClassesSchema = "CREATE TABLE x(label INTEGER, class TEXT, root HIDDEN)";
enum ClassesColumn { kLabel, kClass, kRootArg };

struct ClassesTable {
  sqlite3_vtab base{};
};

struct ClassesCursor {
  sqlite3_vtab_cursor base{};
  std::string root;
  std::vector<std::string> classes;
  std::size_t row = 0;
};

ClassesCursor& classes_cursor_of(sqlite3_vtab_cursor* cur) { return *reinterpret_cast<ClassesCursor*>(cur); }

int classes_connect(sqlite3* db, void*, int, const char* const*, sqlite3_vtab** out, char** err) noexcept {
  try {
    const int rc = sqlite3_declare_vtab(db, kClassesSchema);
    if (rc != SQLITE_OK) return rc;
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);  // it lists a folder
    auto table = std::make_unique<ClassesTable>();
    *out = &table.release()->base;
    return SQLITE_OK;
  } catch (...) {
    return to_sqlite(err);
  }
}

// root is required: a plan without it is refused (SQLITE_CONSTRAINT), so SQLite finds one with it. The rows
// come in label order.
int classes_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) noexcept {
  return guarded(vtab, [&] {
    int root_arg = -1;
    for (int i = 0; i < info->nConstraint; ++i) {
      const auto& c = info->aConstraint[i];
      if (c.op != SQLITE_INDEX_CONSTRAINT_EQ || c.iColumn != kRootArg) continue;
      if (!c.usable) return SQLITE_CONSTRAINT;
      root_arg = i;
    }
    if (root_arg < 0) return SQLITE_CONSTRAINT;
    info->aConstraintUsage[root_arg].argvIndex = 1;
    info->aConstraintUsage[root_arg].omit = 1;
    info->estimatedCost = 10.0;
    info->estimatedRows = 10;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == kLabel && info->aOrderBy[0].desc == 0) {
      info->orderByConsumed = 1;
    }
    return SQLITE_OK;
  });
}

int classes_filter(sqlite3_vtab_cursor* cur, int, const char*, int argc, sqlite3_value** argv) noexcept {
  return guarded(cur->pVtab, [&] {
    auto& cursor = classes_cursor_of(cur);
    cursor.classes.clear();
    cursor.row = 0;
    if (argc < 1 || sqlite3_value_type(argv[0]) != SQLITE_TEXT) {
      throw Error("image_folder_classes(): argument 'root' must be text (a folder's path)", ErrorKind::mismatch);
    }
    cursor.root.assign(reinterpret_cast<const char*>(sqlite3_value_text(argv[0])),
                       static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
    cursor.classes = folder_classes(expand_user(cursor.root), "image_folder_classes");
    return SQLITE_OK;
  });
}

int classes_next(sqlite3_vtab_cursor* cur) noexcept {
  ++classes_cursor_of(cur).row;
  return SQLITE_OK;
}

int classes_eof(sqlite3_vtab_cursor* cur) noexcept {
  const auto& cursor = classes_cursor_of(cur);
  return cursor.row >= cursor.classes.size() ? 1 : 0;
}

int classes_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) noexcept {
  *rowid = static_cast<sqlite3_int64>(classes_cursor_of(cur).row);
  return SQLITE_OK;
}

int classes_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int column) noexcept {
  const auto& cursor = classes_cursor_of(cur);
  const std::string& text = column == kClass ? cursor.classes[cursor.row] : cursor.root;
  if (column == kLabel) {
    sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(cursor.row));
  } else {
    sqlite3_result_text64(ctx, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  }
  return SQLITE_OK;
}

int classes_close(sqlite3_vtab_cursor* cur) noexcept {
  const std::unique_ptr<ClassesCursor> owned(&classes_cursor_of(cur));
  return SQLITE_OK;
}

constexpr sqlite3_module kClassesModule = {
    /* iVersion    */ 1,
    /* xCreate     */ nullptr,  // eponymous-only
    /* xConnect    */ classes_connect,
    /* xBestIndex  */ classes_best_index,
    /* xDisconnect */ table_disconnect<ClassesTable>,
    /* xDestroy    */ table_disconnect<ClassesTable>,
    /* xOpen       */ cursor_open<ClassesCursor>,
    /* xClose      */ classes_close,
    /* xFilter     */ classes_filter,
    /* xNext       */ classes_next,
    /* xEof        */ classes_eof,
    /* xColumn     */ classes_column,
    /* xRowid      */ classes_rowid,
    /* xUpdate     */ nullptr,  // read-only
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

int register_folder_classes_module(sqlite3* db) {
  return sqlite3_create_module_v2(db, "image_folder_classes", &kClassesModule, nullptr, nullptr);
}

}  // namespace imgstore
