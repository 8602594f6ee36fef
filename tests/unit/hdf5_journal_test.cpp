#include <doctest/doctest.h>

#include "hdf5_journal.hpp"

using namespace imgstore;

TEST_CASE("a journal round-trips, and anything incomplete or altered is not a journal") {
  const Journal j{1234, {{0, 5, 7}, {17, -1, 3}, {1233, 9223372036854775807, -9223372036854775807 - 1}}};
  const auto bytes = encode_journal(j);
  CHECK(bytes.size() == 24 + 3 * 24 + 4);
  REQUIRE(decode_journal(bytes));
  CHECK(*decode_journal(bytes) == j);
  CHECK(decode_journal(encode_journal(Journal{})) == Journal{});
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    CHECK_FALSE(decode_journal(std::span(bytes).first(cut)));  // a writer killed while writing it
  }
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto flipped = bytes;
    flipped[i] ^= 0x10;
    CHECK_FALSE(decode_journal(flipped));
  }
  auto longer = bytes;
  longer.push_back(0);
  CHECK_FALSE(decode_journal(longer));
}

TEST_CASE("a crafted entry count cannot overflow the size check") {
  auto bytes = encode_journal(Journal{1, {}});
  for (int i = 0; i < 8; ++i) bytes[16 + i] = 0xff;
  CHECK_FALSE(decode_journal(bytes));
}

TEST_CASE("a format 3 journal (IMGJRNL2) carries the old checksums and round-trips the same way") {
  const Journal j{9, {{0, 5, 7, 0x0123456789abcdefULL}, {8, -1, 3, ~0ULL}}, true};
  const auto bytes = encode_journal(j);
  CHECK(bytes.size() == 24 + 2 * 32 + 4);
  CHECK(bytes[7] == '2');
  REQUIRE(decode_journal(bytes));
  CHECK(*decode_journal(bytes) == j);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto flipped = bytes;
    flipped[i] ^= 0x01;
    CHECK_FALSE(decode_journal(flipped));
  }
  // The version 1 journal of the same entries is another encoding: neither is read as the other.
  Journal old = j;
  old.checksums = false;
  for (auto& e : old.entries) e.checksum = 0;
  CHECK(*decode_journal(encode_journal(old)) == old);
  CHECK(encode_journal(old).size() == 24 + 2 * 24 + 4);
}
