#include <doctest/doctest.h>

#include "error.hpp"
#include "shape.hpp"

using imgstore::Error;
using imgstore::parse_shape;

TEST_CASE("a shape parses as height x width x channels") {
  const auto s = parse_shape("32x32x3", "t");
  CHECK(s.height == 32);
  CHECK(s.width == 32);
  CHECK(s.channels == 3);
  CHECK(s.bytes() == 3072);
  CHECK(s.str() == "32x32x3");
  CHECK(parse_shape("28X28X1", "t") == imgstore::Shape{28, 28, 1});
}

TEST_CASE("malformed shapes are refused with a message naming the value and what was expected") {
  for (const char* bad : {"32x32", "axbxc", "", "32x32x3x1", "32 x32x3", "-1x2x3", "32x32x", "x32x3"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(parse_shape(bad, "table t: shape"),
                         doctest::Contains("is not a shape; expected HxWxC"), Error);
  }
  CHECK_THROWS_WITH_AS(parse_shape("0x1x1", "table t: shape"), "table t: shape: shape '0x1x1' has a zero dimension; expected positive HxWxC", Error);
  CHECK_THROWS_WITH_AS(parse_shape("2x2x5", "t"), doctest::Contains("has 5 channels"), Error);
  CHECK_THROWS_WITH_AS(parse_shape("100000x100000x3", "t"), doctest::Contains("larger than 64 MiB"), Error);
  // Numbers that overflow 64 bits when multiplied, and ones that overflow parsing.
  CHECK_THROWS_AS(parse_shape("4294967296x4294967296x4", "t"), Error);
  CHECK_THROWS_AS(parse_shape("99999999999999999999x1x1", "t"), Error);
}

TEST_CASE("make_shape checks numbers read from file headers") {
  CHECK(imgstore::make_shape(28, 28, 1, "f").bytes() == 784);
  CHECK_THROWS_AS(imgstore::make_shape(1u << 31, 1u << 31, 1, "f"), Error);
}

TEST_CASE("a store's shape may be 'any'; other shapes parse as before, and 'any' is no image's shape") {
  CHECK(imgstore::parse_store_shape("any", "t").any);
  CHECK(imgstore::parse_store_shape("any", "t").str() == "any");
  CHECK(imgstore::parse_store_shape("4x5x3", "t") == imgstore::Shape{4, 5, 3});
  CHECK_THROWS_WITH(imgstore::parse_store_shape("anything", "table t: shape"),
                    "table t: shape: 'anything' is not a shape; expected HxWxC with positive integers, e.g. '32x32x3', "
                    "or 'any' for images of many sizes");
  CHECK_THROWS(imgstore::parse_shape("any", "synthetic(): shape"));
}
