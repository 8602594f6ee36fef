// Registers the table-valued functions cifar10(), idx() and synthetic().
#pragma once

#include "sqlite3ext.h"

namespace imgstore {

int register_sources(sqlite3* db);

}  // namespace imgstore
