// The sharded table's manifest: round trip, routing, and the errors a damaged manifest gives.
#include <doctest/doctest.h>

#include "error.hpp"
#include "shard_manifest.hpp"

using namespace imgstore;
using namespace imgstore::sharded;

namespace {

std::string error_of(const std::string& json) {
  try {
    parse_manifest(json, "t/manifest.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("a manifest survives to_json and parse_manifest, pending ranges included") {
  Manifest m = new_manifest("lmdb", parse_shape("32x32x3", "shape"), 3);
  m.generation = 7;
  m.shards[1].rows = 42;
  m.pending = {{0, 99}, {200, 200}};
  const std::string json = to_json(m);
  CHECK(json.find("\"routing\": \"id mod 3\"") != std::string::npos);
  CHECK(json.find("\"file\": \"shard-001.lmdb\", \"rows\": 42") != std::string::npos);
  CHECK(parse_manifest(json, "m") == m);
  m.pending.clear();
  CHECK(to_json(m).find("pending") == std::string::npos);
  CHECK(parse_manifest(to_json(m), "m") == m);
}

TEST_CASE("shard files are named by backend") {
  CHECK(shard_file_name("lmdb", 7) == "shard-007.lmdb");
  CHECK(shard_file_name("hdf5", 12) == "shard-012.h5");
  CHECK(shard_file_name("png_dir", 0) == "shard-000");
}

TEST_CASE("routing is id mod shards, non-negative for negative ids") {
  CHECK(shard_of(0, 8) == 0);
  CHECK(shard_of(13, 8) == 5);
  CHECK(shard_of(-1, 8) == 7);
  CHECK(shard_of(INT64_MAX, 8) == 7);
}

TEST_CASE("pending ranges are found by binary search, whatever order the manifest lists them in") {
  Manifest m = new_manifest("lmdb", parse_shape("2x2x1", "shape"), 2);
  m.pending = {{9, 9}, {1, 3}, {5, 5}};
  m.undo = 4;
  const Manifest back = parse_manifest(to_json(m), "t/manifest.json");
  CHECK(back.undo == 4);
  REQUIRE(back.pending.size() == 3);
  CHECK(back.pending[0].lo == 1);
  for (const std::int64_t id : {1, 2, 3, 5, 9}) CHECK(in_ranges(back.pending, id));
  for (const std::int64_t id : {0, 4, 6, 8, 10}) CHECK_FALSE(in_ranges(back.pending, id));
}

TEST_CASE("a damaged manifest is an error naming it and the field") {
  const std::string good = to_json(new_manifest("hdf5", parse_shape("2x2x1", "shape"), 2));
  CHECK(error_of(good).empty());
  CHECK(error_of("") == "sharded table manifest 't/manifest.json' is not valid: unexpected end (at byte 0)");
  CHECK(error_of("[]").find("not a JSON object") != std::string::npos);
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    s.replace(s.find(from), from.size(), to);
    return error_of(s);
  };
  CHECK(replace("imgstore-sharded 1", "imgstore-sharded 9").find("format \"imgstore-sharded 9\"") != std::string::npos);
  CHECK(replace("\"hdf5\"", "\"zip\"").find("backend \"zip\"; expected lmdb, hdf5 or png_dir") != std::string::npos);
  CHECK(replace("id mod 2", "id mod 3").find("routing \"id mod 3\"; expected \"id mod 2\"") != std::string::npos);
  CHECK(replace("shard-001.h5", "../x.h5").find("shard file \"../x.h5\" is not a plain name") != std::string::npos);
  CHECK(replace("\"rows\": 0}]", "\"rows\": -1}]").find("rows is negative") != std::string::npos);
  CHECK(replace("\"shards\": [", "\"shards\": 3, \"x\": [").find("\"shards\" is not an array") != std::string::npos);
  CHECK(replace("\"2x2x1\"", "\"2x2\"").find("shape") != std::string::npos);
}

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
