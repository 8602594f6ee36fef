#include "lmdb_format.hpp"

#include <cstring>

#include "checksum.hpp"
#include "error.hpp"

namespace imgstore::lmdb_format {

namespace {

void encode_u64_le(std::uint64_t u, unsigned char out[8]) noexcept {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(u >> (8 * i));
}

std::uint64_t decode_u64_le(const unsigned char in[8]) noexcept {
  std::uint64_t u = 0;
  for (int i = 7; i >= 0; --i) u = (u << 8) | in[i];
  return u;
}

}  // namespace

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
  encode_u64_le(static_cast<std::uint64_t>(label), out);
}

std::int64_t decode_label(const unsigned char in[label_bytes]) noexcept {
  return static_cast<std::int64_t>(decode_u64_le(in));
}

namespace {

std::uint32_t decode_u32_le(const unsigned char* in) noexcept {
  return std::uint32_t{in[0]} | std::uint32_t{in[1]} << 8 | std::uint32_t{in[2]} << 16 | std::uint32_t{in[3]} << 24;
}

void encode_u32_le(std::uint32_t u, unsigned char* out) noexcept {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>(u >> (8 * i));
}

// The shape a value of a store of shape 'any' records, if it is one make_shape would accept.
std::optional<Shape> recorded_shape(const unsigned char* at) noexcept {
  const std::uint64_t h = decode_u32_le(at), w = decode_u32_le(at + 4), c = decode_u32_le(at + 8);
  if (h == 0 || w == 0 || c == 0 || c > max_channels || decode_u32_le(at + 12) != 0) return std::nullopt;
  if (h * w > max_image_bytes / c) return std::nullopt;
  return Shape{static_cast<std::uint32_t>(h), static_cast<std::uint32_t>(w), static_cast<std::uint32_t>(c)};
}

}  // namespace

std::optional<Value> decode_value(Version v, std::span<const std::uint8_t> value, std::size_t pixel_bytes) noexcept {
  if (value.size() != value_bytes(v, pixel_bytes)) return std::nullopt;
  Value out;
  out.label = decode_label(value.data());
  if (v == Version::v2) out.checksum = decode_u64_le(value.data() + label_bytes);
  out.pixels = value.subspan(header_bytes(v));
  return out;
}

std::optional<Value> decode_value(Version v, std::span<const std::uint8_t> value, const Shape& shape) noexcept {
  if (!shape.any) {
    auto out = decode_value(v, value, shape.bytes());
    if (out) out->shape = shape;
    return out;
  }
  if (value.size() < header_bytes(v, true)) return std::nullopt;
  const auto recorded = recorded_shape(value.data() + header_bytes(v));
  if (!recorded || value.size() != value_bytes(v, recorded->bytes(), true)) return std::nullopt;
  Value out;
  out.any = true;
  out.shape = *recorded;
  out.label = decode_label(value.data());
  if (v == Version::v2) out.checksum = decode_u64_le(value.data() + label_bytes);
  out.pixels = value.subspan(header_bytes(v, true));
  return out;
}

void encode_value(Version v, std::int64_t id, std::int64_t label, std::span<const std::uint8_t> pixels,
                  std::span<std::uint8_t> out) noexcept {
  encode_label(label, out.data());
  if (v == Version::v2) encode_u64_le(image_checksum(id, label, pixels), out.data() + label_bytes);
  if (!pixels.empty()) std::memcpy(out.data() + header_bytes(v), pixels.data(), pixels.size());
}

void encode_value(Version v, const Shape& store, std::int64_t id, std::int64_t label, const Shape& image,
                  std::span<const std::uint8_t> pixels, std::span<std::uint8_t> out) noexcept {
  if (!store.any) {
    encode_value(v, id, label, pixels, out);
    return;
  }
  encode_label(label, out.data());
  if (v == Version::v2) encode_u64_le(image_checksum(id, label, pixels) ^ shape_term(image), out.data() + label_bytes);
  unsigned char* const at = out.data() + header_bytes(v);
  encode_u32_le(image.height, at);
  encode_u32_le(image.width, at + 4);
  encode_u32_le(image.channels, at + 8);
  encode_u32_le(0, at + 12);
  if (!pixels.empty()) std::memcpy(out.data() + header_bytes(v, true), pixels.data(), pixels.size());
}

std::uint64_t expected_checksum(std::int64_t id, const Value& value) noexcept {
  return image_checksum(id, value.label, value.pixels) ^ (value.any ? shape_term(value.shape) : 0);
}

std::uint64_t pixel_checksum(const Value& value) noexcept {
  return value.checksum.value_or(0) ^ (value.any ? shape_term(value.shape) : 0);
}

void relabel_value(Version v, std::int64_t id, std::int64_t label, std::span<std::uint8_t> value) noexcept {
  const std::int64_t old = decode_label(value.data());
  encode_label(label, value.data());
  if (v == Version::v2) {
    const std::uint64_t stored = decode_u64_le(value.data() + label_bytes);
    encode_u64_le(relabelled(stored, id, old, label), value.data() + label_bytes);
  }
}

std::string meta_text(const Shape& shape) { return std::string(format_tag) + "\nshape=" + shape.str() + "\n"; }

Shape parse_meta(std::string_view text, const std::string& what) {
  const std::string head = std::string(format_tag) + "\nshape=";
  const auto bad = [&](const std::string& why) { return Error(what + " " + why, ErrorKind::corrupt); };
  if (text.substr(0, head.size()) != head) {
    throw bad("does not start with '" + std::string(format_tag) + "' and a shape= line; expected an imgstore lmdb store's description");
  }
  const std::string_view rest = text.substr(head.size());
  if (rest.empty() || rest.back() != '\n' || rest.find('\n') != rest.size() - 1) {
    throw bad("has more than its two lines, or its last line does not end; expected '" + std::string(format_tag) +
              "\\nshape=HxWxC\\n'");
  }
  Shape shape;
  try {
    shape = parse_store_shape(rest.substr(0, rest.size() - 1), what + ": stored shape");
  } catch (const Error& e) {
    throw Error(e.what(), ErrorKind::corrupt);  // a stored shape that does not parse is damage, not a bad argument
  }
  // Written once by meta_text: any other spelling of a shape (32X32x3, 032x32x3) was not written by us.
  if (text != meta_text(shape)) throw bad("spells its shape '" + std::string(rest.substr(0, rest.size() - 1)) + "'; expected '" + shape.str() + "'");
  return shape;
}

}  // namespace imgstore::lmdb_format
