// Read-only row sources (data-set readers, generators) exposed as table-valued functions by vtab.cpp.
// Like Store, they know nothing of SQLite: arguments arrive as plain values, rows leave through a Cursor.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "store.hpp"

namespace imgstore {

// An argument of a table-valued function: NULL, an integer, or text (paths, shapes, names).
using SourceArg = std::variant<std::monostate, std::int64_t, std::string>;

struct SourceSpec {
  // Names of the hidden argument columns, in call order: cifar10(path, id_offset, split).
  std::vector<std::string> params;
  // How many leading arguments are required.
  std::size_t required = 1;
  // Whether reading the source touches files (then it is registered DIRECTONLY).
  bool touches_files = true;
  // Opens the rows for one set of arguments (absent trailing arguments are monostate).
  std::function<std::unique_ptr<Cursor>(const std::vector<SourceArg>& args)> open;
};

}  // namespace imgstore
