// The native SQLite baseline of raw_baselines: a plain table (id INTEGER PRIMARY KEY, label, pixels) in its
// own database file, through the SQLite C API. The figure a SQLite user compares the stores with.
#pragma once

#include <memory>
#include <string>

#include "raw_baselines.hpp"

namespace raw {

std::unique_ptr<Store> make_sqlite_store(const std::string& path, bool create);

}  // namespace raw
