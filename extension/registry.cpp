#include "registry.hpp"

#include "functions.hpp"
#include "hdf5_store.hpp"
#include "lmdb_store.hpp"
#include "png_store.hpp"
#include "sources.hpp"
#include "vtab.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

int register_all(sqlite3* db, char** err) {
  int rc = register_store_module(db, "lmdb", open_lmdb_store);
  if (rc == SQLITE_OK) rc = register_store_module(db, "hdf5", open_hdf5_store);
  if (rc == SQLITE_OK) rc = register_store_module(db, "png_dir", open_png_store);
  if (rc == SQLITE_OK) rc = register_sources(db);
  if (rc == SQLITE_OK) rc = register_functions(db);
  if (rc != SQLITE_OK) *err = sqlite3_mprintf("imgstore: cannot register its modules (%s)", sqlite3_errstr(rc));
  return rc;
}

}  // namespace imgstore
