// The adapter for the sources (cifar10(), idx(), synthetic(), dataset(), image_folder()): eponymous, read-only
// virtual tables used as table-valued functions. After id, label, pixels come hidden columns: first the
// arguments, then height, width, channels (each row's shape) and the source's own outputs (image_folder's path
// and class). The arguments must come first: SQLite gives a table-valued function's arguments to the hidden
// columns in their order. So an argument beyond the source's own is taken as `height = value`, a filter,
// where it used to be "too many arguments".
//
//   SELECT count(*) FROM cifar10('cifar-10-batches-bin');
//   INSERT INTO train SELECT * FROM synthetic(1000, '32x32x3', 7);
//   INSERT INTO photos(id, label, pixels, height, width, channels)
//     SELECT id, label, pixels, height, width, channels FROM image_folder('photos');

#include <variant>

#include "vtab.hpp"
#include "vtab_common.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

using namespace vtab_detail;

struct SourceModule {
  std::string name;
  SourceSpec spec;
};

struct SourceTable {
  sqlite3_vtab base{};
  const SourceModule* module = nullptr;
};

// Columns: id, label, pixels, the arguments (from kFirstParam), then height, width, channels and the outputs.
constexpr int kFirstParam = 3;
int first_shape_column(const SourceSpec& spec) { return kFirstParam + static_cast<int>(spec.params.size()); }

struct SourceCursor {
  sqlite3_vtab_cursor base{};
  std::unique_ptr<Cursor> rows;
  std::vector<SourceArg> args;
};

const SourceModule& source_module_of(sqlite3_vtab* vtab) {
  return *reinterpret_cast<SourceTable*>(vtab)->module;
}
SourceCursor& source_cursor_of(sqlite3_vtab_cursor* cur) { return *reinterpret_cast<SourceCursor*>(cur); }

int source_connect(sqlite3* db, void* aux, int, const char* const*, sqlite3_vtab** out, char** err) noexcept {
  try {
    const auto* module = static_cast<const SourceModule*>(aux);
    std::string schema = "CREATE TABLE x(id INTEGER, label INTEGER, pixels BLOB";
    for (const auto& param : module->spec.params) schema += ", \"" + param + "\" HIDDEN";
    schema += ", height INTEGER HIDDEN, width INTEGER HIDDEN, channels INTEGER HIDDEN";
    for (const auto& output : module->spec.outputs) schema += ", \"" + output + "\" TEXT HIDDEN";
    schema += ")";
    const int rc = sqlite3_declare_vtab(db, schema.c_str());
    if (rc != SQLITE_OK) return rc;
    sqlite3_vtab_config(db, module->spec.touches_files ? SQLITE_VTAB_DIRECTONLY : SQLITE_VTAB_INNOCUOUS);
    auto table = std::make_unique<SourceTable>();
    table->module = module;
    *out = &table.release()->base;
    return SQLITE_OK;
  } catch (...) {
    return to_sqlite(err);
  }
}

// Only equality constraints on the hidden argument columns are used; they must all be usable for the
// required arguments, otherwise the plan is refused (SQLITE_CONSTRAINT) so SQLite picks an order that
// supplies them. Nothing about id or label is pushed down: a source streams its file in order.
int source_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) noexcept {
  return guarded(vtab, [&] {
    const auto& spec = source_module_of(vtab).spec;
    int bits = 0;
    std::vector<int> slot(spec.params.size(), -1);
    for (int i = 0; i < info->nConstraint; ++i) {
      const auto& c = info->aConstraint[i];
      const int param = c.iColumn - kFirstParam;
      // height, width, channels and the outputs after the arguments: filters SQLite applies itself.
      if (param < 0 || param >= static_cast<int>(slot.size()) || c.op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
      if (!c.usable) return SQLITE_CONSTRAINT;
      slot[static_cast<std::size_t>(param)] = i;
    }
    int argv_index = 0;
    for (std::size_t p = 0; p < slot.size(); ++p) {
      if (slot[p] < 0) continue;
      info->aConstraintUsage[slot[p]].argvIndex = ++argv_index;
      info->aConstraintUsage[slot[p]].omit = 1;
      bits |= 1 << p;
    }
    info->idxNum = bits;
    info->estimatedCost = 1e6;
    info->estimatedRows = 100000;
    if (info->nOrderBy == 1 && info->aOrderBy[0].iColumn == kColId && info->aOrderBy[0].desc == 0) {
      info->orderByConsumed = 1;  // sources yield ids in ascending order
    }
    return SQLITE_OK;
  });
}

SourceArg to_source_arg(sqlite3_value* value) {
  switch (sqlite3_value_type(value)) {
    case SQLITE_NULL: return std::monostate{};
    case SQLITE_INTEGER: return static_cast<std::int64_t>(sqlite3_value_int64(value));
    default:
      return std::string(reinterpret_cast<const char*>(sqlite3_value_text(value)),
                         static_cast<std::size_t>(sqlite3_value_bytes(value)));
  }
}

int source_filter(sqlite3_vtab_cursor* cur, int bits, const char*, int argc, sqlite3_value** argv) noexcept {
  return guarded(cur->pVtab, [&] {
    const auto& module = source_module_of(cur->pVtab);
    auto& cursor = source_cursor_of(cur);
    cursor.rows.reset();
    cursor.args.assign(module.spec.params.size(), std::monostate{});
    int arg = 0;
    for (std::size_t p = 0; p < module.spec.params.size() && arg < argc; ++p) {
      if ((bits & (1 << p)) != 0) cursor.args[p] = to_source_arg(argv[arg++]);
    }
    for (std::size_t p = 0; p < module.spec.required; ++p) {
      if (std::holds_alternative<std::monostate>(cursor.args[p])) {
        throw Error(module.name + "(): argument '" + module.spec.params[p] + "' is required");
      }
    }
    cursor.rows = module.spec.open(cursor.args);
    return SQLITE_OK;
  });
}

// height, width, channels (0, 1, 2: the row's shape; a source's cursor always knows it, source.hpp), then the
// source's own outputs.
int output_column(const SourceModule& module, Cursor& rows, sqlite3_context* ctx, int column) {
  if (column < 3) {
    const std::optional<Shape> shape = rows.row_shape();
    if (!shape) throw Error(module.name + "(): no shape for row " + std::to_string(rows.id()));
    sqlite3_result_int64(ctx, column == 0 ? shape->height : column == 1 ? shape->width : shape->channels);
    return SQLITE_OK;
  }
  const std::string_view text = module.spec.output(rows, static_cast<std::size_t>(column - 3));
  sqlite3_result_text64(ctx, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return SQLITE_OK;
}

int source_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int column) noexcept {
  return guarded(cur->pVtab, [&] {
    auto& cursor = source_cursor_of(cur);
    if (column < kFirstParam) return row_column(*cursor.rows, ctx, column);
    const auto& module = source_module_of(cur->pVtab);
    const int shape_column = column - first_shape_column(module.spec);
    if (shape_column >= 0) return output_column(module, *cursor.rows, ctx, shape_column);
    const auto& arg = cursor.args[static_cast<std::size_t>(column - kFirstParam)];
    if (const auto* i = std::get_if<std::int64_t>(&arg)) sqlite3_result_int64(ctx, *i);
    if (const auto* s = std::get_if<std::string>(&arg)) {
      sqlite3_result_text64(ctx, s->data(), s->size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    return SQLITE_OK;
  });
}

constexpr sqlite3_module kSourceModule = {
    /* iVersion    */ 1,
    /* xCreate     */ nullptr,  // eponymous-only: used as a table-valued function, never CREATEd
    /* xConnect    */ source_connect,
    /* xBestIndex  */ source_best_index,
    /* xDisconnect */ table_disconnect<SourceTable>,
    /* xDestroy    */ table_disconnect<SourceTable>,
    /* xOpen       */ cursor_open<SourceCursor>,
    /* xClose      */ cursor_close<SourceCursor>,
    /* xFilter     */ source_filter,
    /* xNext       */ cursor_next<SourceCursor>,
    /* xEof        */ cursor_eof<SourceCursor>,
    /* xColumn     */ source_column,
    /* xRowid      */ cursor_rowid<SourceCursor>,
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

int register_source_module(sqlite3* db, const char* name, SourceSpec spec) {
  try {
    auto aux = std::make_unique<SourceModule>(SourceModule{name, std::move(spec)});
    return sqlite3_create_module_v2(db, name, &kSourceModule, aux.release(), destroy_aux<SourceModule>);
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

}  // namespace imgstore
