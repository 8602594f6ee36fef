// Everything the extension registers on a connection, in one list.
#pragma once

#include "sqlite3ext.h"

namespace imgstore {

// Registers the store modules (lmdb, hdf5, png_dir), the sources and the scalar functions.
int register_all(sqlite3* db, char** err);

}  // namespace imgstore
