#include "png_dir_format.hpp"

#include <charconv>
#include <optional>

#include "error.hpp"

namespace imgstore::png_dir_format {

namespace {

// Version 2 ends with an "end" line, so a record cut at a line boundary is not taken for a shorter one (the
// record is renamed into place whole, so this is a second line of defence); version 1 records, without it,
// are still read. Version 3 adds the generation line (a record that replaces or deletes).
constexpr std::string_view kRecordTag = "imgstore-commit 3";
constexpr std::string_view kRecordTagV2 = "imgstore-commit 2";
constexpr std::string_view kRecordTagV1 = "imgstore-commit 1";

template <typename T>
std::optional<T> parse_number(std::string_view text) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// Calls line(number, text) for each line (without its end); true when the text ended with a line end.
template <typename Line>
bool each_line(std::string_view text, Line&& line) {
  std::size_t pos = 0;
  std::size_t no = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    std::string_view l = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    line(++no, l);
    if (eol == std::string_view::npos) return false;
    pos = eol + 1;
  }
  return true;
}

}  // namespace

std::string image_name(std::int64_t id) { return std::to_string(id) + ".png"; }
std::string pending_name(std::int64_t id, std::uint64_t seq) {
  return std::to_string(id) + "." + std::to_string(seq) + ".png";
}

std::string meta_text(const Shape& shape) { return std::string(format_tag) + "\nshape=" + shape.str() + "\n"; }

Shape parse_meta(std::string_view text, const std::string& what) {
  if (text.rfind(format_tag, 0) != 0 && text.rfind(format_tag_v1, 0) != 0) {
    throw Error(what + " is not an imgstore png_dir description (version 1 or 2)", ErrorKind::corrupt);
  }
  const auto at = text.find("shape=");
  if (at == std::string_view::npos) throw Error(what + " has no shape=HxWxC line", ErrorKind::corrupt);
  const auto end = text.find('\n', at);
  return parse_store_shape(text.substr(at + 6, end == std::string_view::npos ? std::string_view::npos : end - at - 6),
                     what + ": stored shape");
}

std::string generation_text(std::uint64_t generation) { return std::to_string(generation) + "\n"; }

std::uint64_t parse_generation(std::string_view text, const std::string& what) {
  const auto n = text.ends_with('\n') ? parse_number<std::uint64_t>(text.substr(0, text.size() - 1)) : std::nullopt;
  // Far beyond any store's commits, and below what a lock byte can name (png_dir_locks.hpp).
  if (!n || *n > kMostGenerations) {
    throw Error(what + " is damaged (" + std::to_string(text.size()) +
                    " bytes); expected a generation number below 2^62 and a line end",
                ErrorKind::corrupt);
  }
  return *n;
}

Labels parse_labels_csv(std::string_view text, const std::string& what) {
  Labels labels;
  each_line(text, [&](std::size_t no, std::string_view line) {
    if (no == 1) {
      if (line != "id,label") {
        throw Error(what + " starts with '" + std::string(line) + "'; expected the header 'id,label'", ErrorKind::corrupt);
      }
      return;
    }
    if (line.empty()) return;
    const auto comma = line.find(',');
    const auto id = parse_number<std::int64_t>(line.substr(0, comma));
    const auto label = comma == std::string_view::npos ? std::nullopt : parse_number<std::int64_t>(line.substr(comma + 1));
    if (!id || !label || *id < 0) {
      throw Error(what + " line " + std::to_string(no) + " is '" + std::string(line) +
                      "'; expected 'id,label' with integers, id >= 0",
                  ErrorKind::corrupt);
    }
    if (!labels.emplace(*id, *label).second) {
      throw Error(what + " line " + std::to_string(no) + " repeats id " + std::to_string(*id), ErrorKind::corrupt);
    }
  });
  return labels;
}

std::string labels_csv(const Labels& labels) {
  std::string csv = "id,label\n";
  for (const auto& [id, label] : labels) csv += std::to_string(id) + "," + std::to_string(label) + "\n";
  return csv;
}

std::string labels_csv_lines(const std::vector<std::pair<std::int64_t, std::int64_t>>& rows) {
  std::string csv;
  for (const auto& [id, label] : rows) csv += std::to_string(id) + "," + std::to_string(label) + "\n";
  return csv;
}

std::vector<std::int64_t> parse_journal(std::string_view text) {
  std::vector<std::int64_t> ids;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) break;  // cut short: written before its file, so no file was made
    if (const auto id = parse_number<std::int64_t>(text.substr(pos, eol - pos)); id && *id >= 0) ids.push_back(*id);
    pos = eol + 1;
  }
  return ids;
}

std::string encode_commit_record(const CommitRecord& record) {
  std::string text = std::string(kRecordTag) + "\n";
  if (record.generation) text += "generation " + std::to_string(*record.generation) + "\n";
  text += record.replace_csv ? std::string("csv replace\n") : "csv append " + std::to_string(record.append_at) + "\n";
  for (const auto& [id, seq] : record.renames) text += "rename " + std::to_string(id) + " " + std::to_string(seq) + "\n";
  for (const auto id : record.deletes) text += "delete " + std::to_string(id) + "\n";
  return text + "end\n";
}

CommitRecord parse_commit_record(std::string_view text, const std::string& what) {
  CommitRecord record;
  bool has_csv = false;
  bool v1 = false;
  bool v3 = false;
  bool ended = false;
  const auto bad = [&](std::string_view line) {
    return Error(what + ": unknown line '" + std::string(line) + "'", ErrorKind::corrupt);
  };
  const bool complete = each_line(text, [&](std::size_t no, std::string_view line) {
    if (no == 1) {
      v1 = line == kRecordTagV1;
      v3 = line == kRecordTag;
      if (!v3 && line != kRecordTagV2 && !v1) throw Error(what + ": unknown record '" + std::string(line) + "'", ErrorKind::corrupt);
      return;
    }
    if (ended) throw bad(line);
    if (line == "end" && !v1) {
      ended = true;
      return;
    }
    const auto space = line.find(' ');
    const std::string_view verb = line.substr(0, space);
    const std::string_view rest = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    if (verb == "generation" && v3 && !record.generation && !has_csv) {
      const auto k = parse_number<std::uint64_t>(rest);
      if (!k || *k == 0) throw bad(line);
      record.generation = *k;
    } else if (verb == "csv" && !has_csv) {
      has_csv = true;
      if (rest == "replace") {
        record.replace_csv = true;
      } else if (rest.rfind("append ", 0) == 0) {
        const auto at = parse_number<std::int64_t>(rest.substr(7));
        if (!at || *at < 0) throw bad(line);
        record.append_at = *at;
      } else {
        throw bad(line);
      }
    } else if (verb == "rename") {
      const auto sp = rest.find(' ');
      const auto id = parse_number<std::int64_t>(rest.substr(0, sp));
      const auto seq = sp == std::string_view::npos ? std::nullopt : parse_number<std::uint64_t>(rest.substr(sp + 1));
      if (!id || *id < 0 || !seq) throw bad(line);
      record.renames.emplace_back(id.value_or(0), seq.value_or(0));  // value_or: GCC 12 warns falsely on *seq
    } else if (verb == "delete") {
      const auto id = parse_number<std::int64_t>(rest);
      if (!id || *id < 0) throw bad(line);
      record.deletes.push_back(*id);
    } else {
      throw bad(line);
    }
  });
  if (!complete || !has_csv || (!v1 && !ended)) throw Error(what + ": the record is cut short", ErrorKind::corrupt);
  return record;
}

}  // namespace imgstore::png_dir_format
