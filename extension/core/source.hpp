// Read-only row sources (data-set readers, generators) exposed as table-valued functions by source_vtab.cpp.
// Like Store, they know nothing of SQLite: arguments arrive as plain values, rows leave through a Cursor.
//
// Every source yields the columns id, label, pixels, then hidden columns: one per argument (first: SQLite
// gives a table-valued function's arguments to the hidden columns in order), then height, width, channels
// (each row's shape), then its own outputs (SourceSpec::outputs, e.g. image_folder's path and class). A source
// has no owner that knows one shape for all its rows (as a Store does), so a source's cursor answers
// row_shape() for every row, fixed-shape sources included.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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
  // The source's own hidden text columns after height, width, channels, and their values for the row a cursor
  // that `open` made is on (it may cast the cursor to the type it knows `open` returns).
  std::vector<std::string> outputs = {};
  std::function<std::string_view(Cursor& rows, std::size_t output)> output = {};
};

}  // namespace imgstore
