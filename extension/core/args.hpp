// key=value arguments of CREATE VIRTUAL TABLE (and of table-valued functions), as SQLite's csv module takes
// them: path='x.lmdb', shape='32x32x3', level=6. One parser, one error style for all modules.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace imgstore {

class Args {
 public:
  // Parses each "key=value" (value optionally in '...' or "..." quotes, doubled quotes escape). Keys not in
  // `allowed` are an error naming the key and listing the allowed ones; so is a repeated key.
  Args(std::string_view table, const std::initializer_list<std::string_view>& allowed,
       const std::initializer_list<std::string_view>& raw);
  Args(std::string_view table, const std::initializer_list<std::string_view>& allowed,
       const std::vector<std::string>& raw);

  std::optional<std::string> get(std::string_view key) const;
  std::string require(std::string_view key) const;
  // An integer argument in [lo, hi]; absent -> fallback.
  std::int64_t integer(std::string_view key, std::int64_t lo, std::int64_t hi, std::int64_t fallback) const;
  const std::string& table() const { return table_; }

 private:
  void add(std::string_view arg, const std::initializer_list<std::string_view>& allowed);
  std::string table_;
  std::map<std::string, std::string, std::less<>> values_;
};

// One "key=value" argument split at its first '=': the trimmed key and the unquoted value; nullopt without '='.
// The only place arguments are split (Args, the imgstore module's backend=, the @parameter values).
std::optional<std::pair<std::string, std::string>> split_argument(std::string_view arg);

// Removes one level of SQL quoting ('..', "..", [..], `..`) if present.
std::string unquote(std::string_view text);

}  // namespace imgstore
