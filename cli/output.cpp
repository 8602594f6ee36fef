#include "output.hpp"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <utility>

#include "stats.hpp"

namespace imgbench {

namespace {

// The unit a time is best read in: its divisor and name.
std::pair<double, const char*> time_unit(double s) {
  if (s >= 1) return {1, "s"};
  if (s >= 1e-3) return {1e-3, "ms"};
  return {1e-6, "\u00b5s"};
}

}  // namespace

std::string human_seconds(double s) {
  const auto [scale, unit] = time_unit(s);
  char text[32];
  std::snprintf(text, sizeof text, "%.3g %s", s / scale, unit);
  return text;
}

std::string human_range(const Timing& t) {
  const auto [scale, unit] = time_unit(t.median());
  char text[96];
  // Three significant digits, but no exponent: a slow run can be 7110 µs beside a 851 µs median.
  const auto number = [](double v) {
    char n[32];
    std::snprintf(n, sizeof n, v >= 1000 ? "%.0f" : "%.3g", v);
    return std::string(n);
  };
  std::snprintf(text, sizeof text, "%s %s", number(t.median() / scale).c_str(), unit);
  if (t.runs() < 2) return text;
  return text + (" (" + number(t.min() / scale) + "-" + number(t.max() / scale) + ")");
}

std::string noise_warning(const Timing& t) {
  if (!noisy(t)) return "";
  char text[48];
  std::snprintf(text, sizeof text, "noisy (max/min %.1f)", t.spread());
  return text;
}

std::string human_bytes(double b) {
  char text[32];
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.3g %s", b, units[u]);
  return text;
}

namespace {

bool is_numeric(const Table& t, std::size_t c) { return c < t.numeric.size() && t.numeric[c]; }

}  // namespace

// Characters, not bytes: a UTF-8 continuation byte (µ is two bytes) takes no column.
std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

void write_text(std::ostream& out, const Table& t) {
  std::vector<std::size_t> width(t.header.size(), 0);
  for (std::size_t c = 0; c < t.header.size(); ++c) width[c] = display_width(t.header[c]);
  for (const auto& row : t.rows) {
    for (std::size_t c = 0; c < row.size() && c < width.size(); ++c) width[c] = std::max(width[c], display_width(row[c]));
  }
  const auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const std::string pad(width[c] - display_width(cell), ' ');
      if (c > 0) text += "  ";
      text += is_numeric(t, c) ? pad + cell : cell + pad;
    }
    out << text.substr(0, text.find_last_not_of(' ') + 1) << "\n";
  };
  line(t.header);
  std::vector<std::string> rule;
  for (const auto w : width) rule.emplace_back(w, '-');
  line(rule);
  for (const auto& row : t.rows) line(row);
}

void write_markdown(std::ostream& out, const Table& t) {
  out << "|";
  for (const auto& h : t.header) out << " " << h << " |";
  out << "\n|";
  for (std::size_t c = 0; c < t.header.size(); ++c) out << (is_numeric(t, c) ? "---:|" : "---|");
  out << "\n";
  for (const auto& row : t.rows) {
    out << "|";
    for (const auto& cell : row) out << " " << cell << " |";
    out << "\n";
  }
}

std::string grouped(long long n) {
  const std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && digits[i - 1] != '-' && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string csv_quote(const std::string& cell) {
  if (cell.find_first_of(",\"\n\r") == std::string::npos) return cell;
  std::string q = "\"";
  for (const char ch : cell) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

void write_csv(std::ostream& out, const Table& t) {
  const auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t c = 0; c < cells.size(); ++c) out << (c > 0 ? "," : "") << csv_quote(cells[c]);
    out << "\n";
  };
  line(t.header);
  for (const auto& row : t.rows) line(row);
}

std::string json_quote(const std::string& text) {
  std::string q = "\"";
  for (const char ch : text) {
    switch (ch) {
      case '"': q += "\\\""; break;
      case '\\': q += "\\\\"; break;
      case '\n': q += "\\n"; break;
      case '\r': q += "\\r"; break;
      case '\t': q += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char esc[8];
          std::snprintf(esc, sizeof esc, "\\u%04x", ch);
          q += esc;
        } else {
          q += ch;
        }
    }
  }
  return q + "\"";
}

void write_json(std::ostream& out, const Table& t) {
  out << "[\n";
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    out << "  {";
    for (std::size_t c = 0; c < t.header.size() && c < t.rows[r].size(); ++c) {
      const std::string& cell = t.rows[r][c];
      out << (c > 0 ? ", " : "") << json_quote(t.header[c]) << ": ";
      out << (is_numeric(t, c) && !cell.empty() ? cell : json_quote(cell));
    }
    out << "}" << (r + 1 < t.rows.size() ? "," : "") << "\n";
  }
  out << "]\n";
}

}  // namespace imgbench
