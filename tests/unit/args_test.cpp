#include <doctest/doctest.h>

#include "args.hpp"
#include "error.hpp"

using imgstore::Args;
using imgstore::Error;

TEST_CASE("key=value arguments, quoted or not") {
  const Args args("t", {"path", "shape", "level"}, {"path='a b.lmdb'", " shape = \"32x32x3\" ", "level=6"});
  CHECK(args.require("path") == "a b.lmdb");
  CHECK(args.get("shape") == "32x32x3");
  CHECK(args.integer("level", 0, 9, 1) == 6);
  CHECK(imgstore::unquote("'it''s'") == "it's");
  CHECK(imgstore::unquote("[x]") == "x");
}

TEST_CASE("argument errors name the table and the argument") {
  CHECK_THROWS_WITH_AS(Args("t", {"path"}, {"colour=red"}),
                       "table t: unknown argument 'colour'; expected one of: path", Error);
  CHECK_THROWS_WITH_AS(Args("t", {"path"}, {"path=a", "path=b"}), "table t: argument 'path' given twice", Error);
  CHECK_THROWS_WITH_AS(Args("t", {"path"}, {"oops"}), doctest::Contains("'oops' is not key=value"), Error);
  const Args args("t", {"path", "level"}, {"level=12"});
  CHECK_THROWS_WITH_AS((void)args.require("path"), "table t: argument 'path' is required", Error);
  CHECK_THROWS_WITH_AS((void)args.integer("level", 0, 9, 1),
                       "table t: argument level='12' is not valid; expected an integer from 0 to 9", Error);
}
