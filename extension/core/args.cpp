#include "args.hpp"

#include <cctype>
#include <charconv>

#include "error.hpp"

namespace imgstore {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string join(const std::initializer_list<std::string_view>& names) {
  std::string out;
  for (const auto name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

}  // namespace

std::string unquote(std::string_view text) {
  text = trim(text);
  if (text.size() < 2) return std::string(text);
  const char open = text.front();
  const char close = open == '[' ? ']' : open;
  if ((open != '\'' && open != '"' && open != '`' && open != '[') || text.back() != close) {
    return std::string(text);
  }
  std::string out;
  for (std::size_t i = 1; i + 1 < text.size(); ++i) {
    out += text[i];
    if (text[i] == close && open != '[' && i + 2 < text.size() && text[i + 1] == close) ++i;
  }
  return out;
}

Args::Args(std::string_view table, const std::initializer_list<std::string_view>& allowed,
           const std::initializer_list<std::string_view>& raw)
    : table_(table) {
  for (const auto arg : raw) add(arg, allowed);
}

Args::Args(std::string_view table, const std::initializer_list<std::string_view>& allowed,
           const std::vector<std::string>& raw)
    : table_(table) {
  for (const auto& arg : raw) add(arg, allowed);
}

std::optional<std::pair<std::string, std::string>> split_argument(std::string_view arg) {
  const auto eq = arg.find('=');
  if (eq == std::string_view::npos) return std::nullopt;
  return std::pair{std::string(trim(arg.substr(0, eq))), unquote(arg.substr(eq + 1))};
}

void Args::add(std::string_view arg, const std::initializer_list<std::string_view>& allowed) {
  auto split = split_argument(arg);
  if (!split) {
    throw Error("table " + table_ + ": argument '" + std::string(trim(arg)) +
                "' is not key=value; expected one of: " + join(allowed));
  }
  auto& [key, value] = *split;
  bool known = false;
  for (const auto name : allowed) known = known || name == key;
  if (!known) {
    throw Error("table " + table_ + ": unknown argument '" + key + "'; expected one of: " + join(allowed));
  }
  if (values_.contains(key)) throw Error("table " + table_ + ": argument '" + key + "' given twice");
  values_.emplace(std::move(key), std::move(value));
}

std::optional<std::string> Args::get(std::string_view key) const {
  const auto it = values_.find(key);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::require(std::string_view key) const {
  auto value = get(key);
  if (!value || value->empty()) {
    throw Error("table " + table_ + ": argument '" + std::string(key) + "' is required");
  }
  return *value;
}

std::int64_t Args::integer(std::string_view key, std::int64_t lo, std::int64_t hi,
                           std::int64_t fallback) const {
  const auto value = get(key);
  if (!value) return fallback;
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (ec != std::errc{} || end != value->data() + value->size() || n < lo || n > hi) {
    throw Error("table " + table_ + ": argument " + std::string(key) + "='" + *value +
                "' is not valid; expected an integer from " + std::to_string(lo) + " to " +
                std::to_string(hi));
  }
  return n;
}

}  // namespace imgstore
