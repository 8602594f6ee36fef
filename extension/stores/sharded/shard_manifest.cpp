#include "shard_manifest.hpp"

#include <algorithm>
#include <charconv>
#include <iterator>
#include <map>
#include <memory>
#include <variant>

#include "error.hpp"

namespace imgstore::sharded {

namespace {

// Just enough JSON for the manifest: objects, arrays, strings (with \" and \\ escapes), non-negative and
// negative integers. Anything else is an error.
struct Value;
using Object = std::map<std::string, Value, std::less<>>;
using Array = std::vector<Value>;
struct Value {
  std::variant<std::int64_t, std::string, Array, Object> v;
};

class Parser {
 public:
  Parser(std::string_view text, const std::string& what) : text_(text), what_(what) {}

  Value document() {
    Value value = parse(0);
    skip();
    if (pos_ != text_.size()) fail("unexpected text after the manifest");
    return value;
  }

  [[noreturn]] void fail(const std::string& why) const {
    throw Error("sharded table manifest '" + what_ + "' is not valid: " + why + " (at byte " + std::to_string(pos_) + ")",
                ErrorKind::corrupt);
  }

 private:
  void skip() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\t' || text_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    skip();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }

  Value parse(int depth) {
    if (depth > 8) fail("nested too deeply");
    skip();
    if (pos_ >= text_.size()) fail("unexpected end");
    const char c = text_[pos_];
    if (c == '{') return Value{object(depth)};
    if (c == '[') return Value{array(depth)};
    if (c == '"') return Value{string()};
    return Value{integer()};
  }

  Object object(int depth) {
    Object out;
    expect('{');
    if (eat('}')) return out;
    do {
      skip();
      std::string key = string();
      expect(':');
      if (!out.emplace(std::move(key), parse(depth + 1)).second) fail("a repeated key");
    } while (eat(','));
    expect('}');
    return out;
  }

  Array array(int depth) {
    Array out;
    expect('[');
    if (eat(']')) return out;
    do {
      out.push_back(parse(depth + 1));
    } while (eat(','));
    expect(']');
    return out;
  }

  std::string string() {
    if (pos_ >= text_.size() || text_[pos_] != '"') fail("expected a string");
    ++pos_;
    std::string out;
    while (pos_ < text_.size() && text_[pos_] != '"') {
      char c = text_[pos_++];
      if (c == '\\') {
        if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\\')) fail("an unsupported escape");
        c = text_[pos_++];
      }
      out.push_back(c);
    }
    if (pos_ >= text_.size()) fail("an unterminated string");
    ++pos_;
    return out;
  }

  std::int64_t integer() {
    std::int64_t n = 0;
    const char* begin = text_.data() + pos_;
    const auto [end, ec] = std::from_chars(begin, text_.data() + text_.size(), n);
    if (ec != std::errc() || end == begin) fail("expected an object, array, string or integer");
    pos_ += static_cast<std::size_t>(end - begin);
    return n;
  }

  std::string_view text_;
  const std::string& what_;
  std::size_t pos_ = 0;
};

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

template <typename T>
const T& field(const Parser& p, const Object& object, std::string_view key, const char* type) {
  const auto it = object.find(key);
  if (it == object.end()) p.fail(std::string("no \"") + std::string(key) + "\"");
  const T* value = std::get_if<T>(&it->second.v);
  if (value == nullptr) p.fail(std::string("\"") + std::string(key) + "\" is not " + type);
  return *value;
}

std::uint64_t non_negative(const Parser& p, std::int64_t n, const char* what) {
  if (n < 0) p.fail(std::string(what) + " is negative");
  return static_cast<std::uint64_t>(n);
}

std::string routing_rule(std::size_t shards) { return "id mod " + std::to_string(shards); }

}  // namespace

std::string shard_file_name(std::string_view backend, std::size_t index) {
  char digits[16];
  std::snprintf(digits, sizeof digits, "%03zu", index);
  std::string name = "shard-" + std::string(digits);
  if (backend == "lmdb") return name + ".lmdb";
  if (backend == "hdf5") return name + ".h5";
  return name;
}

Manifest new_manifest(std::string_view backend, const Shape& shape, std::size_t shards) {
  Manifest m;
  m.backend = std::string(backend);
  m.shape = shape;
  for (std::size_t i = 0; i < shards; ++i) m.shards.push_back({shard_file_name(backend, i), 0});
  return m;
}

std::string to_json(const Manifest& m) {
  std::string out = "{\"format\": " + quoted(kFormatTag) + ", \"backend\": " + quoted(m.backend) +
                    ", \"shape\": " + quoted(m.shape.str()) + ", \"routing\": " + quoted(routing_rule(m.shards.size())) +
                    ", \"generation\": " + std::to_string(m.generation) + ",\n \"shards\": [";
  for (std::size_t i = 0; i < m.shards.size(); ++i) {
    out += std::string(i == 0 ? "\n  " : ",\n  ") + "{\"file\": " + quoted(m.shards[i].file) +
           ", \"rows\": " + std::to_string(m.shards[i].rows) + "}";
  }
  out += "]";
  if (!m.pending.empty()) {
    out += ",\n \"pending\": [";
    for (std::size_t i = 0; i < m.pending.size(); ++i) {
      out += std::string(i == 0 ? "" : ", ") + "[" + std::to_string(m.pending[i].lo) + ", " +
             std::to_string(m.pending[i].hi) + "]";
    }
    out += "]";
  }
  if (m.undo > 0) out += ",\n \"undo\": " + std::to_string(m.undo);
  return out + "}\n";
}

Manifest parse_manifest(std::string_view json, const std::string& what) {
  Parser p(json, what);
  const Value doc = p.document();
  const Object* root = std::get_if<Object>(&doc.v);
  if (root == nullptr) p.fail("not a JSON object");
  const std::string& format = field<std::string>(p, *root, "format", "a string");
  if (format != kFormatTag) p.fail("format \"" + format + "\"; expected \"" + std::string(kFormatTag) + "\"");
  Manifest m;
  m.backend = field<std::string>(p, *root, "backend", "a string");
  if (m.backend != "lmdb" && m.backend != "hdf5" && m.backend != "png_dir") {
    p.fail("backend \"" + m.backend + "\"; expected lmdb, hdf5 or png_dir");
  }
  m.shape = parse_store_shape(field<std::string>(p, *root, "shape", "a string"), "manifest '" + what + "': shape");
  m.generation = non_negative(p, field<std::int64_t>(p, *root, "generation", "an integer"), "generation");
  const Array& shards = field<Array>(p, *root, "shards", "an array");
  if (shards.empty() || shards.size() > static_cast<std::size_t>(kMaxShards)) {
    p.fail(std::to_string(shards.size()) + " shards; expected 1 to " + std::to_string(kMaxShards));
  }
  for (const Value& entry : shards) {
    const Object* shard = std::get_if<Object>(&entry.v);
    if (shard == nullptr) p.fail("a shard that is not an object");
    ShardEntry e{field<std::string>(p, *shard, "file", "a string"),
                 non_negative(p, field<std::int64_t>(p, *shard, "rows", "an integer"), "rows")};
    if (e.file.empty() || e.file.find('/') != std::string::npos || e.file == "." || e.file == "..") {
      p.fail("shard file \"" + e.file + "\" is not a plain name in the table's folder");
    }
    m.shards.push_back(std::move(e));
  }
  const std::string& routing = field<std::string>(p, *root, "routing", "a string");
  if (routing != routing_rule(shards.size())) {
    p.fail("routing \"" + routing + "\"; expected \"" + routing_rule(shards.size()) + "\"");
  }
  if (const auto it = root->find("pending"); it != root->end()) {
    const Array* ranges = std::get_if<Array>(&it->second.v);
    if (ranges == nullptr) p.fail("\"pending\" is not an array");
    for (const Value& range : *ranges) {
      const Array* pair = std::get_if<Array>(&range.v);
      const std::int64_t* lo = pair && pair->size() == 2 ? std::get_if<std::int64_t>(&(*pair)[0].v) : nullptr;
      const std::int64_t* hi = pair && pair->size() == 2 ? std::get_if<std::int64_t>(&(*pair)[1].v) : nullptr;
      if (lo == nullptr || hi == nullptr || *lo > *hi) p.fail("a pending range that is not [lo, hi] with lo <= hi");
      m.pending.push_back({*lo, *hi});
    }
    std::sort(m.pending.begin(), m.pending.end(), [](const IdRange& a, const IdRange& b) { return a.lo < b.lo; });
    for (std::size_t i = 1; i < m.pending.size(); ++i) {
      if (m.pending[i].lo <= m.pending[i - 1].hi) p.fail("pending ranges that overlap");
    }
  }
  if (root->find("undo") != root->end()) {
    m.undo = non_negative(p, field<std::int64_t>(p, *root, "undo", "an integer"), "undo");
  }
  return m;
}

bool in_ranges(const std::vector<IdRange>& sorted, std::int64_t id) {
  const auto after = std::upper_bound(sorted.begin(), sorted.end(), id,
                                      [](std::int64_t v, const IdRange& r) { return v < r.lo; });
  return after != sorted.begin() && id <= std::prev(after)->hi;
}

void IdRangeSet::add(std::int64_t id) {
  auto next = by_lo_.upper_bound(id);  // the first range starting after id
  if (next != by_lo_.begin()) {
    auto prev = std::prev(next);
    if (id <= prev->second) return;  // already in
    if (id == prev->second + 1) {
      prev->second = id;
      if (next != by_lo_.end() && next->first == id + 1) {  // joins two ranges
        prev->second = next->second;
        by_lo_.erase(next);
      }
      return;
    }
  }
  if (next != by_lo_.end() && next->first == id + 1) {
    const std::int64_t hi = next->second;
    by_lo_.erase(next);
    by_lo_.emplace(id, hi);
    return;
  }
  by_lo_.emplace(id, id);
}

bool IdRangeSet::contains(std::int64_t id) const {
  const auto next = by_lo_.upper_bound(id);
  return next != by_lo_.begin() && id <= std::prev(next)->second;
}

std::vector<IdRange> IdRangeSet::ranges() const {
  std::vector<IdRange> out;
  out.reserve(by_lo_.size());
  for (const auto& [lo, hi] : by_lo_) out.push_back({lo, hi});
  return out;
}

}  // namespace imgstore::sharded
