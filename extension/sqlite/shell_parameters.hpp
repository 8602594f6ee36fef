// CREATE VIRTUAL TABLE arguments cannot be bound, so a temp table's argument written as @name (or :name,
// $name) takes the value of the sqlite3 shell's parameter of that name (`.parameter set @path 'x.lmdb'`, kept
// in temp.sqlite_parameters; imgbench fills the same table). This is what lets one SQL script run on any
// store. Only temp tables: a stored schema must not mean a different store in every session.
#pragma once

#include <string>
#include <vector>

#include "sqlite3ext.h"

namespace imgstore {

// args with each parameter reference replaced by its quoted value; throws Error naming the table when the
// parameter is unset or the table is not in the temp schema.
std::vector<std::string> resolve_shell_parameters(sqlite3* db, const std::string& schema, const std::string& table,
                                                  std::vector<std::string> args);

}  // namespace imgstore
