// Writers for results: an aligned text table, CSV (RFC 4180 quoting) and JSON.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace imgbench {

// A table is a header plus rows of cells; a cell is text, written as is (numbers already formatted).
struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<bool> numeric;  // right-align these columns (and leave them unquoted in JSON)
};

void write_text(std::ostream& out, const Table& table);
void write_markdown(std::ostream& out, const Table& table);
void write_csv(std::ostream& out, const Table& table);
void write_json(std::ostream& out, const Table& table);

// 100000 -> "100,000".
std::string grouped(long long n);

std::string csv_quote(const std::string& cell);
std::string json_quote(const std::string& text);

}  // namespace imgbench
