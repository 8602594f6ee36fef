#include "registry.hpp"

#include "args.hpp"
#include "functions.hpp"
#include "hdf5_store.hpp"
#include "lmdb_store.hpp"
#include "png_store.hpp"
#include "sharded_store.hpp"
#include "sources.hpp"
#include "vtab.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

// Each backend's module, sharded when asked (shards=N) or when `path` is a sharded table's folder.
std::unique_ptr<Store> open_lmdb_table(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  return open_maybe_sharded("lmdb", open_lmdb_store, table, args, mode);
}
std::unique_ptr<Store> open_hdf5_table(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  return open_maybe_sharded("hdf5", open_hdf5_store, table, args, mode);
}
std::unique_ptr<Store> open_png_table(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  return open_maybe_sharded("png_dir", open_png_store, table, args, mode);
}

}  // namespace

// imgstore(backend='lmdb'|'hdf5'|'png_dir', ...): the same stores, with the backend as an argument, so one
// experiment script serves all three (.parameter set @backend hdf5).
std::unique_ptr<Store> open_any_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  std::vector<std::string> rest;
  std::string backend;
  for (const auto& arg : args) {
    const auto split = split_argument(arg);
    if (split && split->first == "backend") {
      backend = split->second;
    } else {
      rest.push_back(arg);
    }
  }
  if (backend == "lmdb") return open_lmdb_table(table, rest, mode);
  if (backend == "hdf5") return open_hdf5_table(table, rest, mode);
  if (backend == "png_dir" || backend == "png") return open_png_table(table, rest, mode);
  throw Error("table " + table + ": backend '" + backend + "' is not valid; expected 'lmdb', 'hdf5' or 'png_dir'");
}

int register_all(sqlite3* db, char** err) {
  int rc = register_store_module(db, "lmdb", open_lmdb_table);
  if (rc == SQLITE_OK) rc = register_store_module(db, "hdf5", open_hdf5_table);
  if (rc == SQLITE_OK) rc = register_store_module(db, "png_dir", open_png_table);
  if (rc == SQLITE_OK) rc = register_store_module(db, "imgstore", open_any_store);
  if (rc == SQLITE_OK) rc = register_info_module(db);
  if (rc == SQLITE_OK) rc = register_sources(db);
  if (rc == SQLITE_OK) rc = register_functions(db);
  if (rc == SQLITE_OK) rc = register_bulk_functions(db);
  if (rc != SQLITE_OK) *err = sqlite3_mprintf("imgstore: cannot register its modules (%s)", sqlite3_errstr(rc));
  return rc;
}

}  // namespace imgstore
