// The one generic adapter between SQLite's virtual-table API and imgstore's C++ interfaces. Registering a
// backend is one call; everything SQLite-specific (argument strings, xBestIndex, cursors, xUpdate,
// transactions, turning exceptions into SQLite errors) lives in vtab.cpp (store tables) and source_vtab.cpp
// (the sources), over the trampolines of vtab_common.hpp.
#pragma once

#include <functional>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sqlite3ext.h"
#include "source.hpp"
#include "store.hpp"

namespace imgstore {

// Opens the store of table `table` from its CREATE VIRTUAL TABLE key=value arguments; creates it only when
// `mode` says so (xCreate, not xConnect).
using StoreFactory = std::function<std::unique_ptr<Store>(const std::string& table, const std::vector<std::string>& args,
                                                           OpenMode mode)>;

// Registers a read-write module whose tables are stores. File-backed: registered DIRECTONLY.
int register_store_module(sqlite3* db, const char* name, StoreFactory factory);

// What imgstore_info() tells of an open store table (info_vtab.cpp).
struct StoreInfo {
  std::string schema;   // 'main', 'temp' or an attached database's name
  std::string name;     // the table's name
  std::string backend;  // 'lmdb', 'hdf5' or 'png_dir'
  std::string path;     // the path argument, as given
  Shape shape;
  std::uint64_t count = 0;
};

// The store table `name` (case-insensitive) of connection `db` in `schema`, or in the first schema that has
// one in SQLite's search order (temp, main, then attached ones) when `schema` is empty; nullopt when no store
// table of that name is connected.
std::optional<StoreInfo> find_store_table(sqlite3* db, const std::string& schema, const std::string& name);

// The bulk reader's handle (bulk_read.cpp) of the store table found as find_store_table finds it, or 0. A
// handle is unique in the process and never reused: one that outlives its table names nothing.
std::int64_t store_table_handle(sqlite3* db, const std::string& schema, const std::string& name);

// Runs use(store, table name) on the table of `handle` under its connection's mutex (no statement of the
// connection runs meanwhile); false when no connected table has that handle. The connection must stay open
// during the call, as for any SQLite call on it.
bool with_store_table(std::int64_t handle, const std::function<void(Store&, const std::string&)>& use);

// Registers imgstore_info(table [, schema]): one row describing a store table.
int register_info_module(sqlite3* db);

// Registers an eponymous read-only table-valued function (cifar10(...), idx(...), synthetic(...)).
int register_source_module(sqlite3* db, const char* name, SourceSpec spec);

}  // namespace imgstore
