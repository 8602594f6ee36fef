#include "store.hpp"

#include <cstring>
#include <filesystem>

namespace imgstore {

std::size_t Cursor::copy_rows(std::uint8_t* out, std::size_t, std::vector<RowCopy>& rows) {
  rows.clear();
  RowCopy row{id(), label(), {}};
  const std::span<const std::uint8_t> px = pixels_unchecked(row.check);
  std::memcpy(out, px.data(), px.size());
  rows.push_back(row);
  next();
  return 1;
}

void throw_missing_store(const std::string& table, const std::string& path, OpenMode mode) {
  std::error_code ec;
  const std::string resolved = std::filesystem::absolute(path, ec).lexically_normal().string();
  const std::string where = resolved == path ? "" : " (resolved against the working directory: '" + resolved + "')";
  if (mode == OpenMode::inspect) {
    throw Error("table " + table + ": store '" + path + "' does not exist" + where, ErrorKind::cantopen);
  }
  if (mode == OpenMode::must_exist) {
    throw Error("table " + table + ": store '" + path +
                    "' does not exist; the table was created over it, so the store was moved or deleted, or this "
                    "process runs in another working directory" + where,
                ErrorKind::cantopen);
  }
  throw Error("table " + table + ": store '" + path + "' does not exist; give shape='HxWxC' to create it" + where,
              ErrorKind::cantopen);
}

}  // namespace imgstore
