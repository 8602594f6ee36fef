#include <doctest/doctest.h>

#include "shard_journal.hpp"

using imgstore::sharded::IdRangeSet;

TEST_CASE("IdRangeSet keeps consecutive ids as one range and joins ranges that meet") {
  IdRangeSet s;
  for (std::int64_t id = 10; id <= 20; ++id) s.add(id);
  REQUIRE(s.ranges().size() == 1);
  CHECK(s.ranges()[0].lo == 10);
  CHECK(s.ranges()[0].hi == 20);
  s.add(30);
  s.add(9);   // extends the first range downwards
  s.add(15);  // already in
  CHECK(s.ranges().size() == 2);
  for (std::int64_t id = 21; id <= 29; ++id) s.add(id);  // fills the gap: one range again
  REQUIRE(s.ranges().size() == 1);
  CHECK(s.ranges()[0].lo == 9);
  CHECK(s.ranges()[0].hi == 30);
  CHECK(s.contains(9));
  CHECK(s.contains(30));
  CHECK_FALSE(s.contains(8));
  CHECK_FALSE(s.contains(31));
  s.add(-5);
  CHECK(s.contains(-5));
  CHECK_FALSE(s.contains(-4));
  CHECK(s.ranges().size() == 2);
}
