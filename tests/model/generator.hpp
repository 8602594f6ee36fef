// The statement generator of the differential tester: turns a stream of choices (a seeded PRNG for
// model_test, the fuzz input's bytes for fuzz_model) into a sequence of SQL statements over a table whose
// name is the placeholder {t}. The runner executes each one against a native SQLite table and a store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace model {

// A source of choices. below(n) is in [0, n); n >= 1.
class Choices {
 public:
  virtual ~Choices() = default;
  virtual std::uint64_t below(std::uint64_t n) = 0;
  bool percent(int p) { return below(100) < static_cast<std::uint64_t>(p); }
  template <typename T>
  const T& pick(const std::vector<T>& items) {
    return items[below(items.size())];
  }
};

// splitmix64 over a seed: deterministic on every machine.
class RandomChoices : public Choices {
 public:
  explicit RandomChoices(std::uint64_t seed) : state_(seed) {
    state_ = below(~0ull) ^ 0x5851f42d4c957f2dull;  // neighbouring seeds must not share a shifted stream
    state_ = below(~0ull);
  }
  std::uint64_t below(std::uint64_t n) override;

 private:
  std::uint64_t state_;
};

// The bytes of a fuzz input, read as little as needed per choice; 0 once they run out.
class ByteChoices : public Choices {
 public:
  ByteChoices(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint64_t below(std::uint64_t n) override;
  bool exhausted() const { return pos_ >= size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

enum class Kind {
  table,           // a statement on {t}: run on the native table and on the store, results compared
  control,         // BEGIN / COMMIT / ROLLBACK / SAVEPOINT / RELEASE / ROLLBACK TO: run once per connection
  reopen,          // DROP TABLE s; CREATE VIRTUAL TABLE s USING <backend>(path=...) (outside a transaction only)
  check,           // compare the whole tables (count and digest)
  new_connection,  // a brand new connection in this process and a fresh one in the reader process (outside
                   // a transaction only) see the same rows as the native table
  reader,          // the reader process (its long-lived connection) sees the last committed state
  reader_scan,     // "start K": the reader begins a scan of the store and reads K rows (and, in a read
                   // transaction, the native table); "finish": it reads the rest. The scan must give exactly
                   // the rows committed when it started, whatever the writer committed in between.
  own_scan,        // "start K V": the writer's own connection opens scan variant V of the store (and the same query
                   // on its native witness) and reads K rows; "read K": K more; "finish": the rest. As SQLite
                   // leaves it undefined which changes a connection's open scan sees of its own later writes, each
                   // row read must be a version the table held at some point since the scan started, every row
                   // left unchanged all along must be read, and the scan may fail only where the native one does.
};

struct Statement {
  Kind kind = Kind::table;
  std::string sql;       // with {t} for the table name (kind table)
  bool query = false;    // returns rows to compare
  bool ordered = false;  // rows compared in order (ORDER BY given); otherwise as a sorted multiset
};

struct Sequence {
  std::uint64_t seed = 0;
  std::string shape = "4x4x1";  // or "any": rows of many sizes, with height, width, channels (GeneratorOptions)
  int pixel_bytes = 16;         // of every row of a one-shape sequence
  bool any() const { return shape == "any"; }
  std::vector<Statement> statements;
};

struct GeneratorOptions {
  int statements = 50;
  int bulk_min = 100;  // rows of INSERT ... SELECT
  int bulk_max = 400;
  // A store of shape 'any' (model_test --any): every row gets its own height, width and channels (1..4 each),
  // given on INSERT and compared with the native table's columns of those names. One-shape sequences are the
  // same with or without this code (the same choices in the same order).
  bool any_shape = false;
  // For triage only (model_test --avoid): leave out what triggers an already-known defect, to find others.
  bool avoid_float_limit = false;    // no 9.21e18 as an inserted id or label
  bool avoid_null_id = false;        // no INSERT with a NULL id
  bool avoid_huge_float = false;     // no float beyond +-9.2e18 compared with an id (UBSan: apply_bound overflows)
  bool avoid_savepoint_txn = false;  // no SAVEPOINT outside BEGIN ... COMMIT
  // model_test --own-scan: the writer's own connection also holds a scan of the store open across its statements
  // (Kind::own_scan). Off: the same choices in the same order as before it existed.
  bool own_scan = false;
};

Sequence generate(Choices& choices, const GeneratorOptions& options);

// A fuzz_model input's first byte: byte % 3 picks the backend, (byte / 3) % 2 whether the writer holds its own
// scan open (GeneratorOptions::own_scan). model_test --fuzz-input reads it the same way.
inline bool fuzz_own_scan(std::uint8_t first) { return (first / 3) % 2 == 1; }

// sql with every {t} replaced by `table`.
std::string with_table(const std::string& sql, const std::string& table);

const char* kind_name(Kind kind);

}  // namespace model
