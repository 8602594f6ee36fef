#include <doctest/doctest.h>

#include <limits>

#include "id_bounds.hpp"

using namespace imgstore;

TEST_CASE("float bounds near 2^63 are exact, not clamped at 9.2e18") {
  // id >= 9.21e18 must keep 9210000000000000000 (the defect: it was clamped to INT64_MAX).
  CHECK(int_at_or_above(9.21e18) == 9210000000000000000);
  CHECK(int_at_or_below(9.21e18) == 9210000000000000000);
  CHECK(int_above(9.21e18) == 9210000000000000001);
  CHECK(int_below(9.21e18) == 9209999999999999999);
  // The largest double below 2^63 is 2^63 - 1024.
  CHECK(int_above(9223372036854774784.0) == 9223372036854774785);
  CHECK_FALSE(int_at_or_above(9223372036854775808.0));
  CHECK_FALSE(int_above(1e300));
  CHECK(int_at_or_below(1e300) == kIdMax);
  CHECK(int_below(9223372036854775808.0) == kIdMax);
}

TEST_CASE("float bounds below zero and at -2^63") {
  CHECK(int_above(-0.5) == 0);
  CHECK(int_at_or_above(-0.5) == 0);
  CHECK(int_below(-0.5) == -1);
  CHECK(int_at_or_below(-0.5) == -1);
  CHECK(int_above(2.0) == 3);
  CHECK(int_at_or_above(2.0) == 2);
  CHECK(int_below(2.0) == 1);
  CHECK(int_at_or_below(2.0) == 2);
  CHECK(int_above(-9223372036854775808.0) == kIdMin + 1);
  CHECK(int_at_or_above(-9223372036854775808.0) == kIdMin);
  CHECK_FALSE(int_below(-9223372036854775808.0));
  CHECK(int_at_or_below(-9223372036854775808.0) == kIdMin);
  CHECK_FALSE(int_at_or_below(-1e300));
  CHECK(int_above(-1e300) == kIdMin);
}

TEST_CASE("NaN bounds nothing") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_FALSE(int_above(nan));
  CHECK_FALSE(int_at_or_above(nan));
  CHECK_FALSE(int_below(nan));
  CHECK_FALSE(int_at_or_below(nan));
}

TEST_CASE("a REAL becomes an integer only when exact and strictly inside int64, as SQLite's affinity") {
  CHECK(exact_integer(2.0) == 2);
  CHECK(exact_integer(9.21e18) == 9210000000000000000);
  CHECK_FALSE(exact_integer(2.5));
  CHECK_FALSE(exact_integer(-9223372036854775808.0));
  CHECK_FALSE(exact_integer(9223372036854775808.0));
  CHECK(exact_integer(-0.0) == 0);
}
