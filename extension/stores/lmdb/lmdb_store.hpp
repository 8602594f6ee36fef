// LMDB backend: one environment per data file per process (a refcounted registry keyed by device+inode). New
// stores are LMDB environment directories whose main database holds the images (8-byte big-endian id -> label,
// checksum, pixels), older ones single files with named databases: lmdb_format.hpp. The map grows by itself.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store.hpp"

namespace imgstore {

// CREATE VIRTUAL TABLE t USING lmdb(path='x.lmdb' [, shape='32x32x3'] [, timeout=5000] [, verify=1]).
std::unique_ptr<Store> open_lmdb_store(const std::string& table, const std::vector<std::string>& args,
                                      OpenMode mode = OpenMode::create_if_missing);

// Rewrites the store at args' `path` without its free pages and swaps the copy in (lmdb_compact.cpp): atomic
// against a crash, beside other processes' readers and writers for a directory store (format 2); a single-file
// store (format 1) only when nothing else has it open. `args` as open_lmdb_store takes them; `timeout` bounds the
// wait for the store's writer.
Compacted compact_lmdb_store(const std::string& table, const std::vector<std::string>& args);

}  // namespace imgstore
