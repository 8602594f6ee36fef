// The generic SQLite <-> Store adapter. A session with it:
//
//   .load ./build/imgstore
//   CREATE VIRTUAL TABLE train USING lmdb(path='train.lmdb', shape='32x32x3');
//   INSERT INTO train SELECT * FROM synthetic(1000, '32x32x3', 7);
//   SELECT label, count(*) FROM train GROUP BY label;
//   SELECT pixels FROM train WHERE id = 42;
//
// Every callback here is a noexcept trampoline (vtab_common.hpp): it catches every exception and turns it into
// an SQLite result code with the message set on the table (or *pzErr), so no exception ever crosses into
// SQLite. The sources' adapter is source_vtab.cpp.

#include "vtab.hpp"

#include "args.hpp"
#include "id_bounds.hpp"
#include "shell_parameters.hpp"
#include "store_plan.hpp"
#include "store_rows.hpp"
#include "vtab_common.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

using namespace vtab_detail;
using store_plan::apply_bound;
using store_plan::kEq;
using store_plan::kHi;
using store_plan::kHiStrict;
using store_plan::kIn;
using store_plan::kLo;
using store_plan::kLoStrict;

// height, width and channels are hidden: SELECT * stays (id, label, pixels), as on a native table of images.
// They are the store's shape on a one-shape store, each row's own on a store of shape 'any', and an INSERT may
// give them (it must, on 'any').
constexpr const char* kStoreSchema =
    "CREATE TABLE x(id INTEGER, label INTEGER, pixels BLOB, height INTEGER HIDDEN, width INTEGER HIDDEN, "
    "channels INTEGER HIDDEN)";
constexpr int kColHeight = 3;
constexpr int kColWidth = 4;
constexpr int kColChannels = 5;

// ---------------------------------------------------------------------------------------------------------
// Values: integer conversion with SQLite's numeric affinity, as the declared INTEGER columns would apply.

// The integer a value stands for under INTEGER affinity, or nullopt (NULL, non-numeric text, 1.5, blob).
std::optional<std::int64_t> integer_value(sqlite3_value* value) {
  switch (sqlite3_value_numeric_type(value)) {
    case SQLITE_INTEGER:
      return sqlite3_value_int64(value);
    case SQLITE_FLOAT:
      return exact_integer(sqlite3_value_double(value));
    default:
      return std::nullopt;
  }
}

std::string describe(sqlite3_value* value) {
  switch (sqlite3_value_type(value)) {
    case SQLITE_NULL: return "NULL";
    case SQLITE_INTEGER: return std::to_string(sqlite3_value_int64(value));
    case SQLITE_FLOAT: return std::to_string(sqlite3_value_double(value));
    case SQLITE_TEXT: {
      std::string text(reinterpret_cast<const char*>(sqlite3_value_text(value)),
                       static_cast<std::size_t>(sqlite3_value_bytes(value)));
      if (text.size() > 40) text = text.substr(0, 40) + "...";
      return "'" + text + "'";
    }
    default: return "a blob of " + std::to_string(sqlite3_value_bytes(value)) + " bytes";
  }
}

// ---------------------------------------------------------------------------------------------------------
// Store tables.

struct StoreModule {
  std::string name;
  StoreFactory factory;
};

struct StoreTable {
  sqlite3_vtab base{};  // must be first: SQLite hands us back this pointer
  sqlite3* db = nullptr;
  std::string schema;
  std::string name;
  std::string backend;
  std::string path;
  std::unique_ptr<Store> store;
  std::int64_t handle = 0;  // the bulk reader's name for it (bulk_read.cpp): unique in the process, never reused
  std::vector<StoreRows*> open_rows;  // of this table's open cursors: parked before each write (store_rows.hpp)

  void park_cursors() noexcept {
    for (StoreRows* rows : open_rows) rows->park();
  }
};

// Every connected store table of the process, so imgstore_info('t') can find a table by name and the bulk
// reader by handle. Tables of one connection are only added, removed or read under that connection's mutex;
// the list itself is shared.
struct OpenTables {
  std::mutex mutex;
  std::vector<StoreTable*> tables;
  std::int64_t last_handle = 0;
};

OpenTables& open_tables() {
  static OpenTables all;
  return all;
}

void remember(StoreTable* table) {
  const std::lock_guard lock(open_tables().mutex);
  table->handle = ++open_tables().last_handle;
  open_tables().tables.push_back(table);
}

void forget(StoreTable* table) {
  const std::lock_guard lock(open_tables().mutex);
  std::erase(open_tables().tables, table);
}

// The backend and path of a table from its module and arguments (imgstore(backend=...) names its backend).
void describe_origin(StoreTable& table, const std::string& module, const std::vector<std::string>& args) {
  table.backend = module;
  for (const auto& arg : args) {
    const auto split = split_argument(arg);
    if (!split) continue;
    if (split->first == "path") table.path = split->second;
    if (split->first == "backend" && module == "imgstore") table.backend = split->second;
  }
  if (table.backend == "png") table.backend = "png_dir";
}

struct StoreCursor {
  sqlite3_vtab_cursor base{};  // must be first
  StoreRows rows;
};

StoreTable& table_of(sqlite3_vtab* vtab) { return *reinterpret_cast<StoreTable*>(vtab); }
StoreCursor& cursor_of(sqlite3_vtab_cursor* cur) { return *reinterpret_cast<StoreCursor*>(cur); }

int store_open(sqlite3_vtab* vtab, sqlite3_vtab_cursor** out) noexcept {
  try {
    auto cursor = std::make_unique<StoreCursor>();
    table_of(vtab).open_rows.push_back(&cursor->rows);
    *out = &cursor.release()->base;
    return SQLITE_OK;
  } catch (...) {
    return SQLITE_NOMEM;
  }
}

int store_close(sqlite3_vtab_cursor* cur) noexcept {
  const std::unique_ptr<StoreCursor> owned(&cursor_of(cur));
  auto& open = table_of(cur->pVtab).open_rows;
  open.erase(std::remove(open.begin(), open.end(), &owned->rows), open.end());
  owned->rows.close();
  return SQLITE_OK;
}

int store_next(sqlite3_vtab_cursor* cur) noexcept {
  return guarded(cur->pVtab, [&] {
    cursor_of(cur).rows.next();
    return SQLITE_OK;
  });
}

int store_eof(sqlite3_vtab_cursor* cur) noexcept { return cursor_of(cur).rows.at_end() ? 1 : 0; }

int store_rowid(sqlite3_vtab_cursor* cur, sqlite3_int64* rowid) noexcept {
  return guarded(cur->pVtab, [&] {
    *rowid = cursor_of(cur).rows.id();
    return SQLITE_OK;
  });
}

int open_table(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out, char** err,
               OpenMode mode) noexcept {
  try {
    const auto& module = *static_cast<StoreModule*>(aux);
    // argv: module name, database name, table name, then the user's arguments.
    auto table = std::make_unique<StoreTable>();
    table->db = db;
    table->schema = argv[1];
    table->name = argv[2];
    const std::vector<std::string> args =
        resolve_shell_parameters(db, argv[1], table->name, std::vector<std::string>(argv + 3, argv + argc));
    table->store = module.factory(table->name, args, mode);
    describe_origin(*table, module.name, args);
    int rc = sqlite3_declare_vtab(db, kStoreSchema);
    if (rc != SQLITE_OK) return rc;
    // Duplicate ids are reported as SQLITE_CONSTRAINT before anything changes, so SQLite can implement
    // INSERT OR IGNORE itself; OR REPLACE is done in xUpdate (see store_update).
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    // DIRECTONLY: a store is reached only by statements the user writes, never by a view or trigger stored in
    // a database file (SQLite: "unsafe use of virtual table"). A database file may come from anyone and names
    // its tables' paths itself; with the default risk and SQLite's default trusted_schema=ON, opening one in
    // a program that loaded imgstore would let its views read, and its triggers on native tables delete or
    // overwrite images in, any store the program may write. TEMP views work: the session made them
    // (docs/sql.md, "Views and triggers").
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    remember(table.get());
    *out = &table.release()->base;
    return SQLITE_OK;
  } catch (...) {
    return to_sqlite(err);
  }
}

// xCreate (CREATE VIRTUAL TABLE) may create the store; xConnect (a table of a persistent database, opened
// again) must find it, or a moved store would silently come back as a new, empty one. Being distinct
// functions also keeps SQLite from treating the modules as eponymous.
int store_create(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
                 char** err) noexcept {
  return open_table(db, aux, argc, argv, out, err, OpenMode::create_if_missing);
}
int store_connect(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
                  char** err) noexcept {
  return open_table(db, aux, argc, argv, out, err, OpenMode::must_exist);
}

// DROP TABLE forgets the table; the store's files stay (documented in the README).
int store_disconnect(sqlite3_vtab* vtab) noexcept {
  const std::unique_ptr<StoreTable> owned(&table_of(vtab));
  forget(owned.get());
  try {
    owned->store.reset();
  } catch (...) {
    // Closing never reports: the table is gone either way.
  }
  return SQLITE_OK;
}

int store_destroy(sqlite3_vtab* vtab) noexcept { return store_disconnect(vtab); }

bool is_id_column(int column) { return column == kColId || column == -1; }

// The usable constraints on id, by kind (the first of each): indexes into aConstraint, -1 where none.
struct IdConstraints {
  int eq = -1;  // id = ? (or IN)
  int lo = -1;  // id > ? or id >= ?
  int hi = -1;  // id < ? or id <= ?
};

IdConstraints id_constraints(const sqlite3_index_info* info) {
  IdConstraints found;
  for (int i = 0; i < info->nConstraint; ++i) {
    const auto& c = info->aConstraint[i];
    // label constraints are left to SQLite: no backend has a label index, so SQLite filters them.
    if (!c.usable || !is_id_column(c.iColumn)) continue;
    int* slot = nullptr;
    switch (c.op) {
      case SQLITE_INDEX_CONSTRAINT_EQ: slot = &found.eq; break;
      case SQLITE_INDEX_CONSTRAINT_GT:
      case SQLITE_INDEX_CONSTRAINT_GE: slot = &found.lo; break;
      case SQLITE_INDEX_CONSTRAINT_LT:
      case SQLITE_INDEX_CONSTRAINT_LE: slot = &found.hi; break;
      default: break;
    }
    if (slot != nullptr && *slot < 0) *slot = i;
  }
  return found;
}

void set_estimate(sqlite3_index_info* info, const store_plan::Estimate& estimate) {
  info->estimatedCost = estimate.cost;
  info->estimatedRows = estimate.rows;
}

// id = ? reads one row (SCAN_UNIQUE: SQLite may treat the loop as one row); id IN (...) is handed over whole
// so the backend reads the ids in key order. Both are exact (xFilter applies INTEGER affinity as SQLite
// would), so SQLite need not re-check. Ranges on id beside them are left to SQLite.
int plan_point(sqlite3_index_info* info, int eq, Store& store) {
  info->aConstraintUsage[eq].argvIndex = 1;
  info->aConstraintUsage[eq].omit = 1;
  if (sqlite3_vtab_in(info, eq, -1) != 0) {
    sqlite3_vtab_in(info, eq, 1);
    set_estimate(info, store_plan::in_list(store.count()));
    return kIn;
  }
  set_estimate(info, store_plan::point());
  info->idxFlags |= SQLITE_INDEX_SCAN_UNIQUE;
  return kEq;
}

// The range the bounds give where the statement writes them as constants (id > 100), exactly as xFilter will
// compute it; nullopt where a bound is a parameter or another table's column, known only in xFilter.
std::optional<IdRange> constant_range(sqlite3_index_info* info, const IdConstraints& c) {
  IdRange range;
  for (const int i : {c.lo, c.hi}) {
    if (i < 0) continue;
    sqlite3_value* value = nullptr;
    if (sqlite3_vtab_rhs_value(info, i, &value) != SQLITE_OK) return std::nullopt;
    apply_bound(range, info->aConstraint[i].op, value);
  }
  return range;
}

// Ranges: bounds are passed down but not omitted; SQLite re-checks them, which costs one id read per row and
// keeps edge cases (floats, text, overflow) exactly SQLite's. The rows estimated: the range's share of the
// ids when its bounds are constants, else SQLite's own guess for an unknown range. No bound: a full scan.
int plan_range(sqlite3_index_info* info, const IdConstraints& c, Store& store) {
  int plan = 0;
  int argv_index = 0;
  if (c.lo >= 0) {
    info->aConstraintUsage[c.lo].argvIndex = ++argv_index;
    plan |= kLo | (info->aConstraint[c.lo].op == SQLITE_INDEX_CONSTRAINT_GT ? kLoStrict : 0);
  }
  if (c.hi >= 0) {
    info->aConstraintUsage[c.hi].argvIndex = ++argv_index;
    plan |= kHi | (info->aConstraint[c.hi].op == SQLITE_INDEX_CONSTRAINT_LT ? kHiStrict : 0);
  }
  double fraction = 1.0;
  if (argv_index > 0) {
    const auto known = constant_range(info, c);
    fraction = known ? store_plan::range_fraction(*known, store.max_id())
                     : argv_index == 2 ? store_plan::kTwoBoundsFraction : store_plan::kOneBoundFraction;
  }
  set_estimate(info, store_plan::scan(store.count(), store.shape().any ? store_plan::kAnyImageBytes : store.shape().bytes(),
                                      fraction));
  return plan;
}

// The plan's costs are store_plan.hpp's model; its idxStr names what the store does, for EXPLAIN QUERY PLAN
// (xFilter decodes idxNum only).
int store_best_index(sqlite3_vtab* vtab, sqlite3_index_info* info) noexcept {
  return guarded(vtab, [&] {
    Store& store = *table_of(vtab).store;
    const IdConstraints c = id_constraints(info);
    info->idxNum = c.eq >= 0 ? plan_point(info, c.eq, store) : plan_range(info, c, store);
    // Every plan yields rows in ascending id order; DESC needs SQLite's sort (no backend walks backwards).
    const bool ordered =
        info->nOrderBy == 1 && is_id_column(info->aOrderBy[0].iColumn) && info->aOrderBy[0].desc == 0;
    if (ordered) info->orderByConsumed = 1;
    const std::string described = store_plan::describe(info->idxNum, ordered);
    if (described.empty()) return SQLITE_OK;
    info->idxStr = sqlite3_mprintf("%s", described.c_str());
    if (info->idxStr == nullptr) return SQLITE_NOMEM;
    info->needToFreeIdxStr = 1;
    return SQLITE_OK;
  });
}

void add_id(std::vector<std::int64_t>& ids, sqlite3_value* value) {
  const auto id = integer_value(value);
  if (id && *id >= 0) ids.push_back(*id);
}

int store_filter(sqlite3_vtab_cursor* cur, int plan, const char*, int argc, sqlite3_value** argv) noexcept {
  return guarded(cur->pVtab, [&] {
    auto& table = table_of(cur->pVtab);
    auto& cursor = cursor_of(cur);
    cursor.rows.close();  // release the previous snapshot before taking a new one
    int arg = 0;
    if ((plan & (kEq | kIn)) != 0 && arg < argc) {
      std::vector<std::int64_t> ids;
      if ((plan & kIn) != 0) {
        sqlite3_value* value = nullptr;
        int rc = sqlite3_vtab_in_first(argv[arg], &value);
        for (; rc == SQLITE_OK && value != nullptr; rc = sqlite3_vtab_in_next(argv[arg], &value)) {
          add_id(ids, value);
        }
        if (rc != SQLITE_OK && rc != SQLITE_DONE) return rc;
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      } else {
        add_id(ids, argv[arg]);
      }
      cursor.rows.lookup(*table.store, std::move(ids));
      return SQLITE_OK;
    }
    IdRange range;
    if ((plan & kLo) != 0 && arg < argc) {
      apply_bound(range, (plan & kLoStrict) != 0 ? SQLITE_INDEX_CONSTRAINT_GT : SQLITE_INDEX_CONSTRAINT_GE,
                  argv[arg++]);
    }
    if ((plan & kHi) != 0 && arg < argc) {
      apply_bound(range, (plan & kHiStrict) != 0 ? SQLITE_INDEX_CONSTRAINT_LT : SQLITE_INDEX_CONSTRAINT_LE,
                  argv[arg++]);
    }
    cursor.rows.scan(*table.store, range);
    return SQLITE_OK;
  });
}


// The row's shape: the store's, or on a store of shape 'any' the row's own.
Shape shape_of_row(StoreTable& table, Cursor& rows) {
  const Shape& shape = table.store->shape();
  if (!shape.any) return shape;
  if (auto own = rows.row_shape()) return *own;
  throw Error("table " + table.name + ": the shape of id " + std::to_string(rows.id()) + " is unknown");
}

int store_column(sqlite3_vtab_cursor* cur, sqlite3_context* ctx, int column) noexcept {
  return guarded(cur->pVtab, [&] {
    StoreRows& place = cursor_of(cur).rows;
    Cursor* const current = place.current();
    if (current == nullptr) {
      // A function of this statement deleted the row it stands on: its columns read as NULL (its id stays), as
      // a native table's row does.
      if (column == kColId) sqlite3_result_int64(ctx, place.id());
      return SQLITE_OK;
    }
    Cursor& rows = *current;
    if (column < kColHeight) return row_column(rows, ctx, column);
    // An UPDATE that does not set them keeps the row's (update_row): nothing to read.
    if (sqlite3_vtab_nochange(ctx) != 0) return SQLITE_OK;
    const Shape shape = shape_of_row(table_of(cur->pVtab), rows);
    const std::uint32_t dims[3] = {shape.height, shape.width, shape.channels};
    sqlite3_result_int64(ctx, dims[column - kColHeight]);
    return SQLITE_OK;
  });
}

// --- xUpdate: value checks whose messages name the table, the value and what was expected. They fail as a
// native table `(id INTEGER PRIMARY KEY CHECK (id >= 0), label INTEGER NOT NULL CHECK (typeof(label) =
// 'integer'), pixels BLOB CHECK (typeof(pixels) = 'blob' AND length(pixels) = H*W*C))` would: an id that is not
// an integer is a datatype mismatch; every other broken rule is a constraint, which SQLite skips under OR
// IGNORE (SQLITE_VTAB_CONSTRAINT_SUPPORT) and fails under every other conflict clause.

std::int64_t checked_id(const StoreTable& table, sqlite3_value* value) {
  const auto id = integer_value(value);
  if (!id) {
    throw Error("table " + table.name + ": id " + describe(value) + " is not an integer; expected an integer >= 0",
                ErrorKind::mismatch);
  }
  if (*id < 0) {
    throw Error("table " + table.name + ": id " + std::to_string(*id) + " is negative; expected an integer >= 0",
                ErrorKind::constraint);
  }
  return *id;
}

// `row`: "id 5", or "a new row" before its id is chosen.
std::string row_named(std::int64_t id) { return "id " + std::to_string(id); }

std::int64_t checked_label(const StoreTable& table, const std::string& row, sqlite3_value* value) {
  const auto label = integer_value(value);
  if (!label) {
    throw Error("table " + table.name + ": label " + describe(value) + " of " + row +
                    " is not an integer; expected an integer label (NOT NULL)",
                ErrorKind::constraint);
  }
  return *label;
}

// The shape an INSERT or UPDATE gives in height, width, channels (dims[0..2]): nullopt when it gives none of
// them (all NULL, or none set by an UPDATE). A dimension an UPDATE does not set is the row's own (`kept`). A
// one-shape store takes only its own shape; a store of shape 'any' takes any shape make_shape accepts.
std::optional<Shape> given_shape(const StoreTable& table, const std::string& row, sqlite3_value** dims,
                                 const std::optional<Shape>& kept = std::nullopt) {
  static constexpr const char* names[3] = {"height", "width", "channels"};
  const auto unset = [&](int d) { return sqlite3_value_nochange(dims[d]) != 0; };
  bool any_given = false;
  for (int d = 0; d < 3; ++d) any_given = any_given || (!unset(d) && sqlite3_value_type(dims[d]) != SQLITE_NULL);
  if (!any_given) return std::nullopt;
  std::uint64_t values[3] = {0, 0, 0};
  for (int d = 0; d < 3; ++d) {
    if (unset(d) && kept) {
      const std::uint32_t own[3] = {kept->height, kept->width, kept->channels};
      values[d] = own[d];
      continue;
    }
    const auto value = unset(d) ? std::nullopt : integer_value(dims[d]);
    if (!value || *value <= 0) {
      throw Error("table " + table.name + ": " + names[d] + " " + (unset(d) ? std::string("NULL") : describe(dims[d])) +
                      " of " + row + " is not a positive integer; expected height, width and channels all three as "
                      "positive integers (or none of them)",
                  ErrorKind::constraint);
    }
    values[d] = static_cast<std::uint64_t>(*value);
  }
  const Shape shape = make_shape(values[0], values[1], values[2], "table " + table.name + ": " + row);
  const Shape& store = table.store->shape();
  if (!store.any && shape != store) {
    throw Error("table " + table.name + ": " + row + " is a " + shape.str() + " image; expected " + store.str() +
                    " (the store's shape; a store of shape 'any' holds images of many sizes)",
                ErrorKind::constraint);
  }
  return shape;
}

// What the pixels of a row must be, for errors: "a blob of 3072 bytes (shape 32x32x3)".
std::string expected_blob(const Shape& shape) {
  return "a blob of " + std::to_string(shape.bytes()) + " bytes (shape " + shape.str() + ", HWC uint8)";
}

// The pixels of a row and their shape: `shape` as given_shape found it (nullopt: not given). On a one-shape
// store the shape is the store's; on a store of shape 'any' it must be given (or kept, `kept`, by an UPDATE of
// the pixels alone).
std::pair<std::span<const std::uint8_t>, Shape> checked_pixels(const StoreTable& table, const std::string& row,
                                                               sqlite3_value* value, std::optional<Shape> shape,
                                                               std::optional<Shape> kept = std::nullopt) {
  const Shape& store = table.store->shape();
  if (!shape) shape = store.any ? kept : store;
  if (sqlite3_value_type(value) != SQLITE_BLOB) {
    throw Error("table " + table.name + ": pixels of " + row + " are " + describe(value) + "; expected " +
                    (shape ? expected_blob(*shape) : "a blob of height*width*channels bytes (HWC uint8)"),
                ErrorKind::constraint);
  }
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_value_blob(value));
  const auto size = static_cast<std::size_t>(sqlite3_value_bytes(value));
  if (!shape) {
    throw Error("table " + table.name + ": pixels of " + row + " (" + std::to_string(size) +
                    " bytes) come without their shape; a store of shape 'any' needs height, width and channels: "
                    "INSERT INTO " + table.name + "(id, label, pixels, height, width, channels) ...",
                ErrorKind::constraint);
  }
  if (size != shape->bytes()) {
    throw Error("table " + table.name + ": pixels of " + row + " are " + std::to_string(size) + " bytes; expected " +
                    std::to_string(shape->bytes()) + " (shape " + shape->str() + ", HWC uint8)",
                ErrorKind::constraint);
  }
  return {{data, size}, *shape};
}

bool replacing(const StoreTable& table) { return sqlite3_vtab_on_conflict(table.db) == SQLITE_REPLACE; }

// The id of an INSERT without one, as a native rowid table picks it: max(id) + 1 (1 in an empty table); after
// the largest possible id, unused ids at random (SQLite's documented rowid rule), SQLITE_FULL when 100 random
// tries all find one in use.
std::int64_t next_id(StoreTable& table) {
  const auto max = table.store->max_id();
  if (!max) return 1;
  if (*max < std::numeric_limits<std::int64_t>::max()) return *max + 1;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::uint64_t r = 0;
    sqlite3_randomness(sizeof r, &r);
    const auto candidate = static_cast<std::int64_t>(r >> 1);  // [0, 2^63)
    if (candidate > 0 && table.store->lookup({candidate})->at_end()) return candidate;
  }
  throw Error("table " + table.name + ": no unused id found after the largest possible id (100 random tries)",
              ErrorKind::full);
}

void insert_row(StoreTable& table, int argc, sqlite3_value** argv, sqlite3_int64* rowid_out) {
  // argv[1] is the rowid given (INSERT INTO t(rowid, ...)), argv[2] the id column; either may name the id.
  sqlite3_value* const given_rowid = argv[1];
  sqlite3_value* const given_id = argc > 2 ? argv[2] : nullptr;
  std::int64_t id = 0;
  if (given_id != nullptr && sqlite3_value_type(given_id) != SQLITE_NULL) {
    id = checked_id(table, given_id);
    if (sqlite3_value_type(given_rowid) != SQLITE_NULL && checked_id(table, given_rowid) != id) {
      throw Error("table " + table.name + ": rowid " + describe(given_rowid) + " and id " + describe(given_id) +
                      " differ; expected one id",
                  ErrorKind::mismatch);
    }
  } else if (sqlite3_value_type(given_rowid) != SQLITE_NULL) {
    id = checked_id(table, given_rowid);
  } else {
    // The row's own errors first (a native table checks them whatever id it picks), named as "new row".
    checked_label(table, "a new row", argv[3]);
    checked_pixels(table, "a new row", argv[4], given_shape(table, "a new row", argv + 5));
    id = next_id(table);
  }
  const std::string row = row_named(id);
  const std::int64_t label = checked_label(table, row, argv[3]);
  const auto [pixels, shape] = checked_pixels(table, row, argv[4], given_shape(table, row, argv + 5));
  table.store->put(Image{id, label, pixels, shape}, replacing(table));
  *rowid_out = id;
}

void update_row(StoreTable& table, sqlite3_value** argv) {
  const std::int64_t old_id = checked_id(table, argv[0]);
  // The new id: the id column if it changed, else the rowid (UPDATE t SET rowid = ...).
  std::int64_t new_id = checked_id(table, argv[2]);
  if (new_id == old_id) new_id = checked_id(table, argv[1]);
  // A column the statement does not set comes from the row as the store holds it now, not from SQLite's copy
  // taken before the statement's earlier rows changed it: UPDATE OR REPLACE t SET id = id + 1 moves rows onto
  // each other, and each move carries the moved row's label and pixels (as a native table's does).
  const bool label_unchanged = sqlite3_value_nochange(argv[3]) != 0;
  const bool pixels_unchanged = sqlite3_value_nochange(argv[4]) != 0;
  const bool any = table.store->shape().any;
  std::unique_ptr<Cursor> current;
  if (label_unchanged || pixels_unchanged || any) {
    current = table.store->lookup({old_id});
    if (current->at_end()) return;  // gone (replaced by an earlier row of this statement)
  }
  // The row's shape now, and the one the statement gives it (its dimensions not set are the row's).
  const Shape old_shape = any ? shape_of_row(table, *current) : table.store->shape();
  const std::optional<Shape> new_shape = given_shape(table, row_named(new_id), argv + 5, old_shape);
  if (pixels_unchanged && new_shape && *new_shape != old_shape) {
    throw Error("table " + table.name + ": an UPDATE of height, width or channels of " + row_named(old_id) +
                    " without its pixels; expected new pixels of that shape with it",
                ErrorKind::constraint);
  }
  const std::int64_t label = label_unchanged ? current->label() : checked_label(table, row_named(new_id), argv[3]);
  if (new_id == old_id && pixels_unchanged) {
    if (!label_unchanged) table.store->set_label(old_id, label);
    return;
  }
  // Changing the id or the pixels: rewrite the row inside the current transaction, so a failure rolls back.
  std::vector<std::uint8_t> kept;
  std::span<const std::uint8_t> pixels;
  Shape shape = old_shape;
  if (pixels_unchanged) {
    const auto old_pixels = current->pixels();
    kept.assign(old_pixels.begin(), old_pixels.end());
    pixels = kept;
  } else {
    std::tie(pixels, shape) = checked_pixels(table, row_named(new_id), argv[4], new_shape, old_shape);
  }
  if (new_id != old_id) {
    const bool replace = replacing(table);
    if (!replace && !table.store->lookup({new_id})->at_end()) {
      throw Error("table " + table.name + ": id " + std::to_string(new_id) + " already exists; expected a unique id",
                  ErrorKind::constraint);
    }
    table.store->erase(old_id);
    table.store->put(Image{new_id, label, pixels, shape}, replace);
  } else {
    table.store->put(Image{new_id, label, pixels, shape}, true);
  }
}

int store_update(sqlite3_vtab* vtab, int argc, sqlite3_value** argv, sqlite3_int64* rowid) noexcept {
  return guarded(vtab, [&] {
    auto& table = table_of(vtab);
    table.park_cursors();
    // SQLite does not call xBegin for a table created inside the open transaction (it is added to the
    // transaction directly), so the first write begins the backend's transaction itself.
    table.store->begin();
    if (argc == 1) {
      table.store->erase(checked_id(table, argv[0]));
    } else if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
      insert_row(table, argc, argv, rowid);
    } else {
      update_row(table, argv);
    }
    return SQLITE_OK;
  });
}

// The transaction callbacks park the table's open cursors and forward to its Store: one trampoline template
// over the member function (as perfetto's Module<Impl>), noexcept and guarded like every other callback.
template <void (Store::*Method)()>
int forward(sqlite3_vtab* vtab) noexcept {
  return guarded(vtab, [&] {
    table_of(vtab).park_cursors();
    (table_of(vtab).store.get()->*Method)();
    return SQLITE_OK;
  });
}
template <void (Store::*Method)(int)>
int forward_level(sqlite3_vtab* vtab, int level) noexcept {
  return guarded(vtab, [&] {
    table_of(vtab).park_cursors();
    (table_of(vtab).store.get()->*Method)(level);
    return SQLITE_OK;
  });
}

// The commit happened in xSync: SQLite ignores xCommit's result, so nothing that can fail is left for it.
int store_commit(sqlite3_vtab*) noexcept { return SQLITE_OK; }
// The store does not know its name; only imgstore_info's list learns the new one.
int store_rename(sqlite3_vtab* vtab, const char* new_name) noexcept {
  return guarded(vtab, [&] {
    const std::lock_guard lock(open_tables().mutex);
    table_of(vtab).name = new_name;
    return SQLITE_OK;
  });
}

constexpr sqlite3_module kStoreModule = {
    /* iVersion    */ 2,  // 2: savepoints, for statement atomicity inside explicit transactions
    /* xCreate     */ store_create,
    /* xConnect    */ store_connect,
    /* xBestIndex  */ store_best_index,
    /* xDisconnect */ store_disconnect,
    /* xDestroy    */ store_destroy,
    /* xOpen       */ store_open,
    /* xClose      */ store_close,
    /* xFilter     */ store_filter,
    /* xNext       */ store_next,
    /* xEof        */ store_eof,
    /* xColumn     */ store_column,
    /* xRowid      */ store_rowid,
    /* xUpdate     */ store_update,
    /* xBegin      */ forward<&Store::begin>,
    /* xSync       */ forward<&Store::sync>,
    /* xCommit     */ store_commit,
    /* xRollback   */ forward<&Store::rollback>,
    /* xFindFunction */ nullptr,
    /* xRename     */ store_rename,
    /* xSavepoint  */ forward_level<&Store::savepoint>,
    /* xRelease    */ forward_level<&Store::release>,
    /* xRollbackTo */ forward_level<&Store::rollback_to>,
    /* xShadowName */ nullptr,
};


// The connected table `name` of `db` in `schema`, or nullptr. Called under the list's mutex.
const StoreTable* find_in(sqlite3* db, const char* schema, const std::string& name) {
  for (const StoreTable* table : open_tables().tables) {
    if (table->db == db && sqlite3_stricmp(table->schema.c_str(), schema) == 0 &&
        sqlite3_stricmp(table->name.c_str(), name.c_str()) == 0) {
      return table;
    }
  }
  return nullptr;
}

// SQLite's search order for an unqualified name: temp, main, then the attached databases.
const StoreTable* find_unqualified(sqlite3* db, const std::string& name) {
  if (const StoreTable* table = find_in(db, "temp", name)) return table;
  for (int i = 0; const char* schema = sqlite3_db_name(db, i); ++i) {
    if (i == 1) continue;  // temp, searched first
    if (const StoreTable* table = find_in(db, schema, name)) return table;
  }
  return nullptr;
}

}  // namespace

std::optional<StoreInfo> find_store_table(sqlite3* db, const std::string& schema, const std::string& name) {
  const StoreTable* table = nullptr;
  {
    const std::lock_guard lock(open_tables().mutex);
    table = schema.empty() ? find_unqualified(db, name) : find_in(db, schema.c_str(), name);
  }
  // The table stays connected: only this connection, whose mutex the caller holds, could disconnect it.
  if (table == nullptr) return std::nullopt;
  return StoreInfo{table->schema, table->name, table->backend, table->path, table->store->shape(),
                   table->store->count()};
}

std::int64_t store_table_handle(sqlite3* db, const std::string& schema, const std::string& name) {
  const std::lock_guard lock(open_tables().mutex);
  const StoreTable* table = schema.empty() ? find_unqualified(db, name) : find_in(db, schema.c_str(), name);
  return table == nullptr ? 0 : table->handle;
}

bool with_store_table(std::int64_t handle, const std::function<void(Store&, const std::string&)>& use) {
  // The table of `handle` and its connection, read under the list's mutex (nullptr, nullptr: none).
  const auto find = [handle]() -> std::pair<StoreTable*, sqlite3*> {
    const std::lock_guard lock(open_tables().mutex);
    const auto& tables = open_tables().tables;
    const auto it = std::find_if(tables.begin(), tables.end(), [&](const StoreTable* t) { return t->handle == handle; });
    return it == tables.end() ? std::pair<StoreTable*, sqlite3*>{} : std::pair{*it, (*it)->db};
  };
  sqlite3* const db = find().second;
  if (db == nullptr) return false;
  // The connection's mutex, as SQLite's own API calls take it: no statement of the connection runs meanwhile,
  // and the table cannot be disconnected. The list's mutex is not held while waiting for it (connections take
  // the two in the other order when they connect and disconnect tables).
  sqlite3_mutex* const mutex = sqlite3_db_mutex(db);
  sqlite3_mutex_enter(mutex);
  struct Leave {
    sqlite3_mutex* m;
    ~Leave() { sqlite3_mutex_leave(m); }
  } const leave{mutex};
  // Found again under the connection's mutex: it may have been disconnected while we waited for it.
  const auto [found, found_db] = find();
  if (found == nullptr || found_db != db) return false;
  use(*found->store, found->name);
  return true;
}

int register_store_module(sqlite3* db, const char* name, StoreFactory factory) {
  try {
    auto aux = std::make_unique<StoreModule>(StoreModule{name, std::move(factory)});
    // sqlite3_create_module_v2 calls the destructor even when it fails, so ownership passes here.
    return sqlite3_create_module_v2(db, name, &kStoreModule, aux.release(), destroy_aux<StoreModule>);
  } catch (...) {
    return SQLITE_NOMEM;
  }
}


}  // namespace imgstore
