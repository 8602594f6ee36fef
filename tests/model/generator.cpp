#include "generator.hpp"

#include <initializer_list>
#include <string_view>

namespace model {

std::uint64_t RandomChoices::below(std::uint64_t n) {
  std::uint64_t x = (state_ += 0x9e3779b97f4a7c15ull);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  return n <= 1 ? 0 : x % n;
}

std::uint64_t ByteChoices::below(std::uint64_t n) {
  if (n <= 1) return 0;
  std::uint64_t value = 0;
  for (std::uint64_t range = 1; range < n && pos_ < size_; range <<= 8) value = (value << 8) | data_[pos_++];
  return value % n;
}

std::string with_table(const std::string& sql, const std::string& table) {
  std::string out;
  out.reserve(sql.size() + 16);
  for (std::size_t i = 0; i < sql.size();) {
    if (sql.compare(i, 3, "{t}") == 0) {
      out += table;
      i += 3;
    } else {
      out += sql[i++];
    }
  }
  return out;
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::table: return "table";
    case Kind::control: return "control";
    case Kind::reopen: return "reopen";
    case Kind::check: return "check";
    case Kind::new_connection: return "new_connection";
    case Kind::reader: return "reader";
    case Kind::reader_scan: return "reader_scan";
    case Kind::own_scan: return "own_scan";
  }
  return "?";
}

namespace {

using Strings = std::vector<std::string>;

// Concatenation whose parts are evaluated left to right (a braced list is sequenced; the operands of a chain of
// `+` are not), so that a seed gives the same sequence whatever the compiler.
std::string cat(std::initializer_list<std::string> parts) {
  std::string s;
  for (const auto& p : parts) s += p;
  return s;
}

std::string hex_bytes(Choices& c, int n) {
  static const char* digits = "0123456789ABCDEF";
  std::string s;
  for (int i = 0; i < n; ++i) {
    const auto b = c.below(256);
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

// One sequence from a stream of choices. Its state is the generator's guess at the transaction state (the
// runner tracks the real one) and whether the reader process has a scan open.
class Generator {
 public:
  Generator(Choices& c, const GeneratorOptions& o) : c_(c), o_(o) {}
  Sequence run();

 private:
  // Values.
  std::string num(std::int64_t v) { return std::to_string(v); }
  std::string small_id() { return num(static_cast<std::int64_t>(c_.below(41))); }
  std::string huge_id();
  std::string insert_id();
  std::string any_value();
  std::string label_value();
  std::string valid_pixels() { return valid_pixels(n_); }
  std::string valid_pixels(int n);
  std::string bad_pixels() { return bad_pixels(n_); }
  std::string bad_pixels(int n);
  std::string pixels() { return c_.percent(92) ? valid_pixels() : bad_pixels(); }
  // Shape 'any': an image's pixels, height, width, channels as the values of an INSERT (valid: a shape of 1..4
  // in each dimension and its bytes; else one of the ways either may be wrong), or as an UPDATE's SET list.
  // One shape: pixels() or valid_pixels().
  struct Image {
    std::string pixels, height, width, channels;
    std::string values() const { return cat({pixels, ", ", height, ", ", width, ", ", channels}); }
  };
  Image valid_image_parts();
  Image image_parts();
  std::string image();
  std::string valid_image();
  std::string set_image(bool valid);
  // "{t}" followed, for shape 'any', by the columns an INSERT names (height, width and channels are hidden).
  std::string into() const { return any_ ? "{t}(id, label, pixels, height, width, channels)" : "{t}"; }
  std::string conflict();
  // WHERE clauses.
  std::string id_condition(const std::string& col = "id");
  std::string label_condition();
  // or_terms false: no OR of id conditions, for statements that move rows onto other ids. Their outcome on a
  // conflict depends on the order rows are visited, and SQLite visits a virtual table's rows OR term by OR
  // term, a native table's by rowid: both are right, so such a statement is not comparable.
  std::string where(bool or_terms = true);
  // Statements.
  Statement table(std::string sql, bool query = false, bool ordered = false);
  Statement query();
  std::string row();
  Statement insert_one();
  Statement insert_many();
  Statement insert_bulk();
  Statement self_insert();
  Statement update();
  Statement remove();
  Statement churn();
  Statement control();
  Statement savepoint();
  Statement own_scan();
  Statement statement();

  Choices& c_;
  const GeneratorOptions& o_;
  bool any_ = false;  // shape 'any'
  int n_ = 16;        // the bytes of an image (shape 'any': of the largest, 4x4x4)
  bool max_ids_ = false;
  bool txn_ = false;          // the generator's guess; the runner tracks the real state
  Strings savepoints_;
  int next_savepoint_ = 0;
  bool outer_savepoint_ = false;
  bool wrote_ = false;  // a write was generated since the last BEGIN (a guess, like txn_)
  bool scan_open_ = false;  // a reader_scan start was generated, its finish not yet
  bool own_open_ = false;   // an own_scan start was generated, its finish not yet
  std::int64_t hot_ = 0;    // the id churn() deletes and inserts again, over and over (run() picks it)
};

Sequence Generator::run() {
  Sequence seq;
  if (o_.any_shape) {
    seq.shape = "any";
    seq.pixel_bytes = 64;
    any_ = true;
  } else if (c_.percent(20)) {
    seq.shape = "2x3x3";
    seq.pixel_bytes = 18;
  }
  n_ = seq.pixel_bytes;
  // INSERT with a NULL id takes max(id)+1 on both sides, except at INT64_MAX where the native table picks a
  // random free rowid: a sequence either uses INT64_MAX as an id or NULL ids, never both.
  max_ids_ = c_.percent(50) || o_.avoid_null_id;
  hot_ = static_cast<std::int64_t>(1 + c_.below(39));
  for (int i = 0; i < o_.statements; ++i) seq.statements.push_back(statement());
  return seq;
}

std::string Generator::huge_id() {
  // With NULL ids in play, 2^63-2 is left out too: two NULL ids after it would reach 2^63-1 within a statement.
  Strings ids = {max_ids_ ? "9223372036854775806" : "9223372036854774000", "1099511627776", "4611686018427387904",
                 "9223372036854775000"};
  if (max_ids_) ids.push_back("9223372036854775807");
  return c_.pick(ids);
}

// An id to insert: mostly valid and small, so that collisions are frequent.
std::string Generator::insert_id() {
  const auto r = c_.below(100);
  if (r < 82) return small_id();
  if (r < 88) return huge_id();
  if (r < 90 && !max_ids_) return "NULL";
  const std::string v = c_.pick(Strings{"-1", "'x'", "1.5", "'7'", "2.0", "x'05'", "9.21e18", "-9223372036854775808", "''"});
  return o_.avoid_float_limit && v == "9.21e18" ? "9.0e18" : v;
}

// Any value to compare an id with: every type, the int64 limits, floats near them.
std::string Generator::any_value() {
  const auto r = c_.below(100);
  if (r < 55) return small_id();
  if (r < 65) return huge_id();
  const std::string v = c_.pick(Strings{"9223372036854775807", "-9223372036854775808", "9223372036854775806", "9.21e18",
                         "9.3e18", "-9.3e18", "-0.5", "2.0", "20.5", "1e300", "-1e300", "'5'", "'abc'", "'20'",
                         "NULL", "x'05'", "-1", "0", "40.0", "1099511627776.0"});
  if (o_.avoid_huge_float && (v == "9.3e18" || v == "1e300" || v == "9.21e18")) return "9.0e18";
  if (o_.avoid_huge_float && (v == "-9.3e18" || v == "-1e300")) return "-9.0e18";
  if (o_.avoid_float_limit && v == "9.21e18") return "9.0e18";
  return v;
}

std::string Generator::label_value() {
  const auto r = c_.below(100);
  if (r < 80) return num(static_cast<std::int64_t>(c_.below(10)));
  if (r < 90) {
    return c_.pick(Strings{"-3", "'5'", "2.0", "9223372036854775807", "-9223372036854775808", "' 4'"});
  }
  const std::string v = c_.pick(Strings{"NULL", "'cat'", "1.5", "9.21e18", "x'05'", "1e300", "''"});
  return o_.avoid_float_limit && v == "9.21e18" ? "9.0e18" : v;
}

std::string Generator::valid_pixels(int n) {
  switch (c_.below(4)) {
    case 0: return "zeroblob(" + num(n) + ")";
    case 1: return "x'" + hex_bytes(c_, n) + "'";
    case 2: return cat({"substr(x'", hex_bytes(c_, 2 * n), "', ", num(1 + static_cast<int>(c_.below(n))), ", ",
                        num(n), ")"});
    default: return "x'" + std::string(static_cast<std::size_t>(2 * n), "0123456789ABCDEF"[c_.below(16)]) + "'";
  }
}

std::string Generator::bad_pixels(int n) {
  return c_.pick(Strings{"zeroblob(" + num(n - 1) + ")", "zeroblob(" + num(n + 1) + ")", "'abc'", "NULL",
                         "x'05'", "123", "zeroblob(0)"});
}

Generator::Image Generator::valid_image_parts() {
  const int h = 1 + static_cast<int>(c_.below(4));
  const int w = 1 + static_cast<int>(c_.below(4));
  const int ch = 1 + static_cast<int>(c_.below(4));
  return {valid_pixels(h * w * ch), num(h), num(w), num(ch)};
}

std::string Generator::valid_image() {
  if (!any_) return valid_pixels();
  return valid_image_parts().values();
}

Generator::Image Generator::image_parts() {
  if (c_.percent(90)) return valid_image_parts();
  const int h = 1 + static_cast<int>(c_.below(4));
  const int w = 1 + static_cast<int>(c_.below(4));
  const int ch = 1 + static_cast<int>(c_.below(4));
  // Wrong pixels for a sound shape, or sound pixels with dimensions missing, zero, negative or NULL in part,
  // or a shape one row off. (Not 5 channels: the store's MISMATCH and a native CHECK's CONSTRAINT are different
  // classes by design.)
  switch (c_.below(3)) {
    case 0: return {bad_pixels(h * w * ch), num(h), num(w), num(ch)};
    case 1: {
      Image bad{valid_pixels(h * w * ch), num(h), num(w), num(ch)};
      switch (c_.below(5)) {
        case 0: bad.height = bad.width = bad.channels = "NULL"; break;
        case 1: bad.height = "0"; break;
        case 2: bad.width = "NULL"; break;
        case 3: bad.channels = "-1"; break;
        default: bad.height = "NULL"; break;
      }
      return bad;
    }
    default: return {valid_pixels(h * w * ch), num(h + 1), num(w), num(ch)};
  }
}

std::string Generator::image() {
  if (!any_) return pixels();
  return image_parts().values();
}

std::string Generator::set_image(bool valid) {
  if (!any_) return "pixels = " + (valid ? valid_pixels() : pixels());
  // New pixels of the row's own shape (a store of shape 'any' keeps it), or new pixels with their shape.
  if (c_.percent(40)) return "pixels = substr(x'" + hex_bytes(c_, n_) + "', 1, length(pixels))";
  const Image v = valid || c_.percent(90) ? valid_image_parts() : image_parts();
  return cat({"pixels = ", v.pixels, ", height = ", v.height, ", width = ", v.width, ", channels = ", v.channels});
}

std::string Generator::conflict() {
  const auto r = c_.below(100);
  if (r < 55) return "";
  return c_.pick(Strings{"OR IGNORE ", "OR REPLACE ", "OR ABORT ", "OR FAIL ", "OR ROLLBACK "});
}

std::string Generator::id_condition(const std::string& col) {
  switch (c_.below(11)) {
    case 0:
    case 1: return col + " = " + any_value();
    case 2: {
      std::string s = col + " IN (";
      const auto k = 1 + c_.below(6);
      for (std::uint64_t i = 0; i < k; ++i) s += (i ? ", " : "") + any_value();
      return s + ")";
    }
    case 3: return col + " > " + any_value();
    case 4: return col + " >= " + any_value();
    case 5: return col + " < " + any_value();
    case 6: return col + " <= " + any_value();
    case 7: return cat({col, " BETWEEN ", any_value(), " AND ", any_value()});
    case 8: return cat({col, " > ", any_value(), " AND ", col, " < ", any_value()});
    case 9: return cat({col, " >= ", any_value(), " AND ", col, " <= ", any_value()});
    default: return c_.pick(Strings{col + " IS NULL", col + " IS NOT NULL", col + " % 3 = 0", col + " IN ()",
                                    col + " NOT IN (1, 2, 3)", col + " != " + small_id()});
  }
}

std::string Generator::label_condition() {
  switch (c_.below(4)) {
    case 0: return "label = " + num(static_cast<std::int64_t>(c_.below(10)));
    case 1: return cat({"label IN (", num(static_cast<std::int64_t>(c_.below(10))), ", ",
                        num(static_cast<std::int64_t>(c_.below(10))), ")"});
    case 2: return "label > " + num(static_cast<std::int64_t>(c_.below(10)));
    default: return "label < " + num(static_cast<std::int64_t>(c_.below(10)));
  }
}

std::string Generator::where(bool or_terms) {
  const auto r = c_.below(100);
  if (r < 62) return id_condition(c_.percent(5) ? "rowid" : "id");
  if (r < 77) return label_condition();
  if (r < 87) return cat({id_condition(), " AND ", label_condition()});
  if (r < 95) return or_terms ? cat({id_condition(), " OR ", id_condition()}) : id_condition();
  if (any_ && c_.percent(30)) {
    return c_.pick(Strings{"height = 2", "width > channels", "height * width * channels = length(pixels)",
                           "channels IN (2, 4)", "length(pixels) < 8"});
  }
  return c_.pick(Strings{"1", "0", "pixels = zeroblob(" + num(n_) + ")", "length(pixels) = " + num(n_)});
}

Statement Generator::table(std::string sql, bool query, bool ordered) {
  return Statement{Kind::table, std::move(sql), query, ordered};
}

Statement Generator::query() {
  switch (c_.below(12)) {
    case 0:
    case 1: return table(std::string("SELECT id, label, hex(pixels)") + (any_ ? ", height, width, channels" : "") +
                             " FROM {t} WHERE " + where(),
                         true);
    case 2:
    case 3: {
      std::string s = cat({"SELECT id, label FROM {t} WHERE ", where(), " ORDER BY id", c_.percent(50) ? " DESC" : ""});
      if (c_.percent(60)) {
        s += " LIMIT " + num(static_cast<std::int64_t>(c_.below(8)));
        if (c_.percent(50)) s += " OFFSET " + num(static_cast<std::int64_t>(c_.below(6)));
      }
      return table(s, true, true);
    }
    case 4: return table("SELECT count(*) FROM {t}" + (c_.percent(70) ? " WHERE " + where() : std::string()), true);
    case 5: return table("SELECT label, count(*), sum(id) FROM {t}" +
                             (c_.percent(40) ? " WHERE " + where() : std::string()) + " GROUP BY label",
                         true);
    case 6: return table("SELECT sum(label), min(id), max(id), count(*) FROM {t}", true);
    case 7: return table(cat({"SELECT id, hex(pixels)", any_ ? ", height || 'x' || width || 'x' || channels" : "",
                              " FROM {t} ORDER BY id", c_.percent(50) ? " DESC" : " ASC",
                              " LIMIT ", num(static_cast<std::int64_t>(1 + c_.below(5))), " OFFSET ",
                              num(static_cast<std::int64_t>(c_.below(4)))}),
                         true, true);
    case 8: return table("SELECT a.id, b.label FROM {t} a JOIN {t} b ON b.id = a.id + 1 WHERE " + id_condition("a.id"), true);
    case 9: return table("SELECT id, label FROM {t} WHERE id IN (SELECT id + 1 FROM {t} WHERE " + label_condition() + ")", true);
    case 10: return table("SELECT min(id), max(id) FROM {t} WHERE " + id_condition(), true);
    default: return table(cat({"SELECT id FROM {t} WHERE ", where(), " ORDER BY id LIMIT ",
                               num(static_cast<std::int64_t>(1 + c_.below(10)))}),
                          true, true);
  }
}

std::string Generator::row() {
  std::string r = "(";
  r += insert_id();
  r += ", ";
  r += label_value();
  r += ", ";
  r += image();
  r += ")";
  return r;
}

Statement Generator::insert_one() {
  const auto r = c_.below(10);
  if (r == 0 && !max_ids_) {
    return table(cat({"INSERT ", conflict(), any_ ? "INTO {t}(label, pixels, height, width, channels) VALUES ("
                                                  : "INTO {t}(label, pixels) VALUES (",
                      label_value(), ", ", image(), ")"}));
  }
  if (r == 1) return table("REPLACE INTO " + into() + " VALUES " + row());
  if (r == 2) return table(cat({"INSERT ", conflict(), "INTO ", any_ ? into() : "{t}(id, label, pixels)", " VALUES ", row()}));
  return table(cat({"INSERT ", conflict(), "INTO ", into(), " VALUES ", row()}));
}

Statement Generator::insert_many() {
  std::string s = "INSERT " + conflict() + "INTO " + into() + " VALUES ";
  const auto k = 2 + c_.below(5);
  for (std::uint64_t i = 0; i < k; ++i) s += (i ? ", " : "") + row();
  return table(s);
}

// Hundreds of rows, one of them bad (or none), at a random position.
Statement Generator::insert_bulk() {
  const int n = o_.bulk_min + static_cast<int>(c_.below(static_cast<std::uint64_t>(o_.bulk_max - o_.bulk_min + 1)));
  const int k = static_cast<int>(c_.below(static_cast<std::uint64_t>(n)));
  const std::string base = c_.pick(Strings{"0", "20", "41", "100", "1000", "100000", "9223372036854770000"});
  const std::string step = c_.percent(70) ? "1" : "2";
  const auto bad = c_.below(6);  // 0 none, 1 pixels, 2 NULL label, 3 negative id, 4 duplicate id, 5 text label
  const std::string K = num(k);
  if (c_.percent(35)) {
    const std::string seed = num(static_cast<std::int64_t>(c_.below(1000)));
    std::string id = "id * " + step + " + " + base, label = "label", pix = "pixels";
    if (bad == 1) pix = "CASE WHEN id = " + K + " THEN substr(pixels, 2) ELSE pixels END";
    if (bad == 2) label = "CASE WHEN id = " + K + " THEN NULL ELSE label END";
    if (bad == 3) id = "CASE WHEN id = " + K + " THEN -1 ELSE " + id + " END";
    if (bad == 4) id = "CASE WHEN id = " + K + " THEN " + base + " ELSE " + id + " END";
    if (bad == 5) label = "CASE WHEN id = " + K + " THEN 'cat' ELSE label END";
    if (any_) {
      // Shape 'any': synthetic 4x4x4 images cut to a shape of 1..4 in each dimension, chosen by the id.
      const std::string clause = conflict();
      return table(cat({"INSERT ", clause, "INTO ", into(), " SELECT ", id, ", ", label, ", ", pix,
                        ", height, width, channels FROM (SELECT id, label, substr(pixels, 1, (1 + id % 4) * (1 + id / 4 % 4) "
                        "* (1 + id / 16 % 4)) AS pixels, 1 + id % 4 AS height, 1 + id / 4 % 4 AS width, "
                        "1 + id / 16 % 4 AS channels FROM synthetic(", num(n), ", '4x4x4', ", seed, "))"}));
    }
    return table("INSERT " + conflict() + "INTO {t} SELECT " + id + ", " + label + ", " + pix + " FROM synthetic(" +
                 num(n) + ", '" + (n_ == 16 ? "4x4x1" : "2x3x3") + "', " + seed + ")");
  }
  std::string id = "i * " + step + " + " + base, label = "i % 10";
  // (Shape 'any': the length is the row's shape's, 1..4 in each dimension by i, given after the pixels.)
  const std::string length = any_ ? "(1 + i % 4) * (1 + i / 4 % 4) * (1 + i / 16 % 4)" : num(n_);
  std::string pix = "substr(x'" + hex_bytes(c_, 2 * n_) + "', 1 + i % " + num(n_) + ", " + length + ")";
  const std::string dims = any_ ? ", 1 + i % 4, 1 + i / 4 % 4, 1 + i / 16 % 4" : "";
  if (bad == 1) pix = "CASE WHEN i = " + K + " THEN zeroblob(" + num(n_ + 1) + ") ELSE " + pix + " END";
  if (bad == 2) label = "CASE WHEN i = " + K + " THEN NULL ELSE i % 10 END";
  if (bad == 3) id = "CASE WHEN i = " + K + " THEN -5 ELSE " + id + " END";
  if (bad == 4) id = "CASE WHEN i = " + K + " THEN " + base + " ELSE " + id + " END";
  if (bad == 5) label = "CASE WHEN i = " + K + " THEN 1.5 ELSE i % 10 END";
  return table("WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < " + num(n - 1) +
               ") INSERT " + conflict() + "INTO " + into() + " SELECT " + id + ", " + label + ", " + pix + dims + " FROM c");
}

Statement Generator::self_insert() {
  return table(cat({"INSERT ", conflict(), "INTO ", into(), " SELECT id + ", c_.pick(Strings{"1", "7", "50", "1000", "100000"}),
                    any_ ? ", label, pixels, height, width, channels" : ", label, pixels", " FROM {t} WHERE ", where(false)}));
}

Statement Generator::update() {
  const std::string clause = conflict();
  const std::string head = "UPDATE " + clause + "{t} SET ";
  // UPDATE OR REPLACE that moves several ids onto each other is not comparable: SQLite computes a virtual
  // table's new rows before the first xUpdate, while a native table's later rows see the earlier rows'
  // replacements (a cascade). So id-moving updates of many rows never use OR REPLACE.
  const std::string many_ids = "UPDATE " + (clause == "OR REPLACE " ? std::string() : clause) + "{t} SET ";
  // Shape 'any': a shape changed without pixels of it (a CHECK failure on the native table, refused by the store).
  if (any_ && c_.percent(4)) return table(cat({head, "height = height + 1 WHERE ", where()}));
  switch (c_.below(8)) {
    case 0:
    case 1: return table(cat({head, "label = ", c_.percent(30) ? "label + 1" : label_value(), " WHERE ", where()}));
    case 2: return table(cat({head, set_image(false), " WHERE ", where()}));
    case 3: return table(cat({many_ids, "id = id + ", c_.pick(Strings{"1", "1000", "-1", "3", "40", "9223372036854775000"}),
                              " WHERE ", where(false)}));
    case 4: return table(cat({head, "id = ", insert_id(), " WHERE id = ", small_id()}));
    case 5: return table(cat({many_ids, "id = id + 1000, label = ", label_value(), " WHERE ", where(false)}));
    case 6: return table(cat({head, "label = ", label_value(), ", ", set_image(false), " WHERE ", where()}));
    default: return table(cat({many_ids, "rowid = ", insert_id(), " WHERE ", where(false)}));
  }
}

Statement Generator::remove() {
  if (c_.percent(4)) return table("DELETE FROM {t}");
  return table("DELETE FROM {t} WHERE " + where());
}

// The same id, most likely committed, deleted and written again many times in one transaction: by DELETE,
// INSERT (plain, OR REPLACE, OR IGNORE), REPLACE and id-changing UPDATEs onto it and away from it. A store that
// keeps per-id transaction state (png_dir's pending and direct files) must undo and commit each cycle alike.
Statement Generator::churn() {
  const std::string h = num(hot_);
  const std::string next = num(hot_ + 1);
  const std::string prev = num(hot_ - 1);
  switch (c_.below(9)) {
    case 0:
    case 1: return table("DELETE FROM {t} WHERE id = " + h);
    case 2: return table(cat({"INSERT ", conflict(), "INTO ", into(), " VALUES (", h, ", ", label_value(), ", ", valid_image(), ")"}));
    case 3: return table(cat({"REPLACE INTO ", into(), " VALUES (", h, ", ", label_value(), ", ", valid_image(), ")"}));
    case 4: return table(cat({"UPDATE ", conflict(), "{t} SET id = ", h, " WHERE id = ", c_.percent(50) ? next : prev}));
    case 5: return table(cat({"UPDATE ", conflict(), "{t} SET id = ", c_.percent(50) ? next : prev, " WHERE id = ", h}));
    case 6: return table(cat({"UPDATE {t} SET ", set_image(true), " WHERE id = ", h}));
    case 7: return table(cat({"UPDATE OR REPLACE {t} SET id = id + 1 WHERE id = ", prev}));
    default: return table(cat({"INSERT OR REPLACE INTO ", into(), " VALUES (", h, ", ", label_value(), ", ", valid_image(),
                               "), (", next, ", ", label_value(), ", ", valid_image(), ")"}));
  }
}

Statement Generator::control() {
  const auto r = c_.below(100);
  if (!txn_) {
    if (r < 50) {
      txn_ = true;
      outer_savepoint_ = false;
      wrote_ = false;
      return {Kind::control, c_.percent(85) ? "BEGIN" : "BEGIN IMMEDIATE"};
    }
    if (r < 85) {
      if (o_.avoid_savepoint_txn) {
        txn_ = true;
        outer_savepoint_ = false;
        return {Kind::control, "BEGIN"};
      }
      return savepoint();
    }
    return {Kind::control, c_.pick(Strings{"COMMIT", "ROLLBACK", "RELEASE sp0", "ROLLBACK TO sp1"})};
  }
  if (r < 17) {
    txn_ = false;
    savepoints_.clear();
    return {Kind::control, c_.percent(80) ? "COMMIT" : "END"};
  }
  if (r < 30) {
    txn_ = false;
    savepoints_.clear();
    return {Kind::control, "ROLLBACK"};
  }
  if (r < 55) {
    if (o_.avoid_savepoint_txn && !wrote_) return query();
    return savepoint();
  }
  if (r < 75 && !savepoints_.empty()) {
    const auto i = c_.below(savepoints_.size());
    const std::string name = savepoints_[i];
    savepoints_.resize(i);
    if (savepoints_.empty() && outer_savepoint_) txn_ = false;
    return {Kind::control, "RELEASE " + name};
  }
  if (r < 97 && !savepoints_.empty()) {
    const auto i = c_.below(savepoints_.size());
    const std::string name = savepoints_[i];
    savepoints_.resize(i + 1);
    return {Kind::control, "ROLLBACK TO " + name};
  }
  return {Kind::control, c_.pick(Strings{"BEGIN", "RELEASE nosuch", "ROLLBACK TO nosuch"})};
}

Statement Generator::savepoint() {
  if (!txn_) {
    outer_savepoint_ = true;  // a SAVEPOINT outside a transaction opens one, which its RELEASE commits
    txn_ = true;
  }
  const std::string name = "sp" + num(next_savepoint_++ % 4);
  savepoints_.push_back(name);
  return {Kind::control, "SAVEPOINT " + name};
}

// Variants (runner.cpp, own_scan_sql): 0 every column; 1 pixels only of ids above a bound (read late, so a
// store's pixel read-ahead starts mid-scan); 2 ids from a bound on. "start K V B": K rows read, B the bound.
Statement Generator::own_scan() {
  if (!own_open_) {
    own_open_ = true;
    return {Kind::own_scan, cat({"start ", num(static_cast<std::int64_t>(1 + c_.below(40))), " ",
                                 num(static_cast<std::int64_t>(c_.below(3))), " ",
                                 c_.pick(Strings{"10", "30", "150", "1050"})})};
  }
  if (c_.percent(60)) return {Kind::own_scan, "read " + num(static_cast<std::int64_t>(1 + c_.below(60)))};
  own_open_ = false;
  return {Kind::own_scan, "finish"};
}

Statement Generator::statement() {
  if (o_.own_scan && c_.percent(12)) return own_scan();
  if (c_.percent(15)) {
    wrote_ = true;
    return churn();
  }
  const auto r = c_.below(100);
  if (r < 24) return query();
  if (r >= 24 && r < 68) wrote_ = true;
  if (r < 36) return insert_one();
  if (r < 42) return insert_many();
  if (r < 47) return insert_bulk();
  if (r < 50) return self_insert();
  if (r < 62) return update();
  if (r < 68) return remove();
  if (r < 83) return control();
  if (r < 86) {
    if (txn_) return control();
    return {Kind::reopen, ""};
  }
  if (r < 92) return {Kind::check, ""};
  if (r < 94) {
    if (txn_) return {Kind::check, ""};
    return {Kind::new_connection, ""};
  }
  if (r < 97) return {Kind::reader, ""};
  scan_open_ = !scan_open_;
  if (scan_open_) return {Kind::reader_scan, "start " + num(static_cast<std::int64_t>(1 + c_.below(4)))};  // >= 1: xFilter runs
  return {Kind::reader_scan, "finish"};
}

}  // namespace

Sequence generate(Choices& choices, const GeneratorOptions& options) { return Generator(choices, options).run(); }

}  // namespace model
