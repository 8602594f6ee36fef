#include "registry.hpp"

#include "lmdb_store.hpp"
#include "vtab.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

int register_all(sqlite3* db, char** err) {
  int rc = register_store_module(db, "lmdb", open_lmdb_store);
  if (rc != SQLITE_OK) *err = sqlite3_mprintf("imgstore: cannot register its modules (%s)", sqlite3_errstr(rc));
  return rc;
}

}  // namespace imgstore
