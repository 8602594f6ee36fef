#include "lmdb_format.hpp"

namespace imgstore::lmdb_format {

void encode_key(std::int64_t id, unsigned char out[key_bytes]) noexcept {
  const auto u = static_cast<std::uint64_t>(id);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(u >> (56 - 8 * i));
}

std::int64_t decode_key(const unsigned char in[key_bytes]) noexcept {
  std::uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | in[i];
  return static_cast<std::int64_t>(u);
}

void encode_label(std::int64_t label, unsigned char out[label_bytes]) noexcept {
  const auto u = static_cast<std::uint64_t>(label);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(u >> (8 * i));
}

std::int64_t decode_label(const unsigned char in[label_bytes]) noexcept {
  std::uint64_t u = 0;
  for (int i = 7; i >= 0; --i) u = (u << 8) | in[i];
  return static_cast<std::int64_t>(u);
}

}  // namespace imgstore::lmdb_format
