#include <doctest/doctest.h>

#include "error.hpp"
#include "png_dir_format.hpp"

using namespace imgstore;
using namespace imgstore::png_dir_format;

TEST_CASE("labels.csv round-trips; bad lines are errors naming the file, the line and what was expected") {
  const Labels labels{{0, 3}, {7, -1}, {9223372036854775807, 9}};
  CHECK(labels_csv(labels) == "id,label\n0,3\n7,-1\n9223372036854775807,9\n");
  CHECK(parse_labels_csv(labels_csv(labels), "t") == labels);
  CHECK(parse_labels_csv("id,label\r\n1,2\r\n\r\n", "t") == Labels{{1, 2}});
  CHECK(parse_labels_csv(labels_csv(labels) + labels_csv_lines({{8, 1}}), "t").at(8) == 1);
  CHECK_THROWS_WITH_AS(parse_labels_csv("id;label\n", "f"), "f starts with 'id;label'; expected the header 'id,label'", Error);
  CHECK_THROWS_WITH_AS(parse_labels_csv("id,label\n1,2\n2;4\n", "f"),
                       "f line 3 is '2;4'; expected 'id,label' with integers, id >= 0", Error);
  CHECK_THROWS_WITH_AS(parse_labels_csv("id,label\n-1,2\n", "f"), doctest::Contains("line 2 is '-1,2'"), Error);
  CHECK_THROWS_WITH_AS(parse_labels_csv("id,label\n1,2\n1,3\n", "f"), "f line 3 repeats id 1", Error);
}

TEST_CASE("a commit record round-trips; anything incomplete or malformed is refused") {
  const CommitRecord append{false, 4096, {{5, 1}, {6, 2}}, {}, std::nullopt};
  const CommitRecord replace{true, 0, {{5, 3}}, {1, 2}, 7};
  CHECK(parse_commit_record(encode_commit_record(append), "c") == append);
  CHECK(parse_commit_record(encode_commit_record(replace), "c") == replace);
  CHECK(encode_commit_record(replace).starts_with("imgstore-commit 3\ngeneration 7\ncsv replace\n"));
  const std::string text = encode_commit_record(replace);
  for (std::size_t cut = 0; cut < text.size(); ++cut) {
    CHECK_THROWS_AS(parse_commit_record(text.substr(0, cut), "c"), Error);  // a record never completed
  }
  // No number, no file outside the store: a damaged record cannot rename ../x.
  for (const char* bad : {"rename ../../x 1", "rename 5", "rename -5 1", "delete ../x", "delete -1", "csv append -3",
                          "csv sideways", "drop 5"}) {
    CHECK_THROWS_WITH_AS(parse_commit_record("imgstore-commit 2\ncsv replace\n" + std::string(bad) + "\nend\n", "c"),
                         doctest::Contains("unknown line"), Error);
  }
  CHECK_THROWS_WITH_AS(parse_commit_record("imgstore-commit 4\ncsv replace\nend\n", "c"),
                       doctest::Contains("unknown record"), Error);
  // The generation: once, first, a number > 0, and only in version 3 records.
  for (const char* bad : {"imgstore-commit 3\ngeneration 0\ncsv replace\nend\n",
                          "imgstore-commit 3\ngeneration x\ncsv replace\nend\n",
                          "imgstore-commit 3\ngeneration 2\ngeneration 3\ncsv replace\nend\n",
                          "imgstore-commit 3\ncsv replace\ngeneration 2\nend\n",
                          "imgstore-commit 2\ngeneration 2\ncsv replace\nend\n"}) {
    CHECK_THROWS_WITH_AS(parse_commit_record(bad, "c"), doctest::Contains("unknown line"), Error);
  }
  // Version 2 records (earlier builds) have no generation: applied without keeping old files.
  CHECK(parse_commit_record("imgstore-commit 2\ncsv replace\ndelete 4\nend\n", "c") == CommitRecord{true, 0, {}, {4}, std::nullopt});
  // Records written before the "end" line existed are still read.
  CHECK(parse_commit_record("imgstore-commit 1\ncsv append 12\nrename 5 1\n", "c") == CommitRecord{false, 12, {{5, 1}}, {}, std::nullopt});
}

TEST_CASE(".imgstore names the format and the shape") {
  CHECK(meta_text(Shape{28, 28, 1}) == "imgstore-png_dir 2\nshape=28x28x1\n");
  CHECK(parse_meta(meta_text(Shape{2, 3, 4}), "m") == Shape{2, 3, 4});
  CHECK(parse_meta("imgstore-png_dir 1\nshape=2x3x4\n", "m") == Shape{2, 3, 4});  // stores of earlier builds
  CHECK_THROWS_WITH_AS(parse_meta("something else", "m"), "m is not an imgstore png_dir description (version 1 or 2)",
                       Error);
  CHECK_THROWS_AS(parse_meta("imgstore-png_dir 3\nshape=2x3x4\n", "m"), Error);
}

TEST_CASE(".old/generation is a number and a line end") {
  CHECK(generation_text(12) == "12\n");
  CHECK(parse_generation("12\n", "g") == 12);
  CHECK(parse_generation("4611686018427387903\n", "g") == kMostGenerations);
  for (const char* bad : {"", "12", "x\n", "-1\n", "1 2\n", "4611686018427387904\n", "18446744073709551615\n"}) {
    CHECK_THROWS_WITH_AS(parse_generation(bad, "g"), doctest::Contains("expected a generation number"), Error);
  }
  CHECK(image_name(42) == "42.png");
  CHECK(pending_name(42, 7) == "42.7.png");
}

TEST_CASE(".pending/new lists the ids written directly; a line cut short by a crash is not one") {
  CHECK(parse_journal("") == std::vector<std::int64_t>{});
  CHECK(parse_journal("5\n12\n") == std::vector<std::int64_t>{5, 12});
  CHECK(parse_journal("5\n12\n3") == std::vector<std::int64_t>{5, 12});   // the last write cut short
  CHECK(parse_journal("5\nx\n-1\n7\n") == std::vector<std::int64_t>{5, 7});  // never a name outside the store
}
