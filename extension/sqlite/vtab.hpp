// The one generic adapter between SQLite's virtual-table API and imgstore's C++ interfaces. Registering a
// backend is one call; everything SQLite-specific (argument strings, xBestIndex, cursors, xUpdate,
// transactions, turning exceptions into SQLite errors) lives in vtab.cpp (store tables) and source_vtab.cpp
// (the sources), over the trampolines of vtab_common.hpp.
#pragma once

#include <functional>
#include <memory>
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

// Registers an eponymous read-only table-valued function (cifar10(...), idx(...), synthetic(...)).
int register_source_module(sqlite3* db, const char* name, SourceSpec spec);

}  // namespace imgstore
