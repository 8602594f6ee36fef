// imgstore: a loadable SQLite extension that stores images (id, label, pixels) in LMDB, HDF5 or a directory
// of PNG files, each behind a virtual table.
//
//   sqlite3
//   .load ./build/imgstore
//   CREATE VIRTUAL TABLE train USING lmdb(path='train.lmdb', shape='28x28x1');
//   INSERT INTO train SELECT * FROM idx('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz');
//   SELECT label, count(*) FROM train GROUP BY label;
//
// This file only registers modules and functions; the adapter is vtab.cpp, the backends *_store.cpp.

#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#include "registry.hpp"

extern "C" {

int sqlite3_imgstore_init(sqlite3* db, char** err, const sqlite3_api_routines* api) {
  SQLITE_EXTENSION_INIT2(api);
  return imgstore::register_all(db, err);
}

}
