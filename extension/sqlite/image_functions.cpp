// Pixel maths over many images, as aggregates (the maths is core/image_math.hpp's):
//
//   SELECT label, image_mean(pixels, '28x28x1') FROM fashion GROUP BY label;     -- float32 HWC, per label
//   SELECT png_encode(image_mean(pixels, '28x28x1', 1), '28x28x1') FROM fashion;  -- the mean image as a PNG
//   SELECT writefile('grid.png', image_grid(pixels, '28x28x1', 8)) FROM (SELECT pixels FROM fashion LIMIT 40);
//
// As avg() does, both skip rows whose pixels are NULL and return NULL for no rows. The other arguments are
// read at the first row; every later row must repeat them (they are constants in practice), or it is an
// error. Both are pure: DETERMINISTIC | INNOCUOUS. For one image the scalar png_encode(pixels, shape) is the
// counterpart, and image_mean over one row is that image.

#include "image_functions.hpp"

#include <cstring>
#include <initializer_list>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "function_common.hpp"
#include "image_math.hpp"
#include "png_codec.hpp"
#include "shape.hpp"

namespace imgstore {

namespace {

// An aggregate's C++ state. SQLite's aggregate context (zeroed memory that SQLite frees) holds only a pointer
// to it, set at the first row and taken back by xFinal, which SQLite calls for every aggregate context it
// made: at the end of the group, and also when a step failed or the statement was reset before its end.
template <typename State>
State*& state_slot(sqlite3_context* ctx) {
  auto** const slot = static_cast<State**>(sqlite3_aggregate_context(ctx, sizeof(State*)));
  if (slot == nullptr) throw std::bad_alloc();
  return *slot;
}

template <typename State>
std::unique_ptr<State> take_state(sqlite3_context* ctx) noexcept {
  auto** const slot = static_cast<State**>(sqlite3_aggregate_context(ctx, 0));
  return std::unique_ptr<State>(slot != nullptr ? std::exchange(*slot, nullptr) : nullptr);
}

// A step in guarded(); when it fails, its state (up to 64 MiB for a grid) is freed at once rather than
// finished by the xFinal of a statement that is failing anyway.
template <typename State, typename Body>
void aggregate_step(sqlite3_context* ctx, Body&& body) noexcept {
  guarded(ctx, [&] {
    try {
      body();
    } catch (...) {
      take_state<State>(ctx).reset();
      throw;
    }
  });
}

std::int64_t int_arg(sqlite3_value* v, const char* fn, const char* name) {
  if (sqlite3_value_type(v) != SQLITE_INTEGER) {
    throw Error(std::string(fn) + "(): " + name + " must be an integer", ErrorKind::mismatch);
  }
  return sqlite3_value_int64(v);
}

// The arguments after pixels as the first row gave them: shape (argv[1]), then integers (argv[2] on), named
// by `names`. Later rows are compared with them cheaply: the shape's text byte for byte, parsed again only
// when it differs ('32X32x3' is still the same shape).
class FirstRow {
 public:
  FirstRow(const char* fn, int argc, sqlite3_value** argv, std::initializer_list<const char*> names)
      : fn_(fn), names_(names), text_(text_arg(argv[1], fn, "shape")), shape_(parse_shape(text_, where())) {
    for (int i = 2; i < argc; ++i) ints_.push_back(int_arg(argv[i], fn, names_[i - 2]));
  }

  const Shape& shape() const noexcept { return shape_; }
  // The i-th integer argument, or `absent` when the call leaves it out.
  std::int64_t integer(std::size_t i, std::int64_t absent) const noexcept {
    return i < ints_.size() ? ints_[i] : absent;
  }

  // Throws when this row's arguments differ from the first row's.
  void check(int argc, sqlite3_value** argv) const {
    sqlite3_value* const shape = argv[1];
    const bool same_text = sqlite3_value_type(shape) == SQLITE_TEXT &&
                           static_cast<std::size_t>(sqlite3_value_bytes(shape)) == text_.size() &&
                           std::memcmp(sqlite3_value_text(shape), text_.data(), text_.size()) == 0;
    if (!same_text) {
      const std::string text = text_arg(shape, fn_, "shape");
      if (parse_shape(text, where()) != shape_) {
        throw Error(where() + " '" + text + "' differs from the first row's '" + text_ +
                        "'; expected one shape for all images",
                    ErrorKind::mismatch);
      }
    }
    for (int i = 2; i < argc; ++i) {
      const std::int64_t value = int_arg(argv[i], fn_, names_[i - 2]);
      if (value != ints_[i - 2]) {
        throw Error(std::string(fn_) + "(): " + names_[i - 2] + " " + std::to_string(value) +
                        " differs from the first row's " + std::to_string(ints_[i - 2]) + "; expected the same for every row",
                    ErrorKind::mismatch);
      }
    }
  }

 private:
  std::string where() const { return std::string(fn_) + "(): shape"; }

  const char* fn_;
  std::vector<const char*> names_;
  std::string text_;
  Shape shape_;
  std::vector<std::int64_t> ints_;
};

// image_mean(pixels, shape [, as_uint8]): the per-pixel mean, float32 little-endian (H*W*C*4 bytes), or with
// as_uint8 = 1 rounded half up to uint8 (H*W*C bytes). The sums are exact integers, divided once at the end.
struct MeanState {
  FirstRow first;
  bool as_uint8;
  PixelSum sum;
};

std::unique_ptr<MeanState> start_mean(int argc, sqlite3_value** argv) {
  FirstRow first("image_mean", argc, argv, {"as_uint8"});
  const std::int64_t as_uint8 = first.integer(0, 0);
  if (as_uint8 != 0 && as_uint8 != 1) {
    throw Error("image_mean(): as_uint8 " + std::to_string(as_uint8) + "; expected 0 (float32) or 1 (uint8)",
                ErrorKind::mismatch);
  }
  const Shape shape = first.shape();
  return std::make_unique<MeanState>(MeanState{std::move(first), as_uint8 == 1, PixelSum(shape, "image_mean()")});
}

// One row of an image aggregate: NULL pixels skipped (as avg() skips NULLs); the first row makes the state from
// its arguments (`start`), every later row must repeat them; then `add` takes the pixels.
template <typename State, typename Start, typename Add>
void pixels_step(sqlite3_context* ctx, int argc, sqlite3_value** argv, const char* fn, Start&& start, Add&& add) {
  aggregate_step<State>(ctx, [&] {
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return;
    const auto pixels = blob_arg(argv[0], fn, "pixels");
    State*& state = state_slot<State>(ctx);
    if (state == nullptr) {
      state = start(argc, argv).release();  // owned by the slot until xFinal takes it back
    } else {
      state->first.check(argc, argv);
    }
    add(*state, pixels);
  });
}

void mean_step(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  pixels_step<MeanState>(ctx, argc, argv, "image_mean", start_mean, [](MeanState& s, auto px) { s.sum.add(px); });
}

void mean_final(sqlite3_context* ctx) noexcept {
  guarded(ctx, [&] {
    const std::unique_ptr<MeanState> state = take_state<MeanState>(ctx);
    if (state == nullptr) return sqlite3_result_null(ctx);  // no rows, or only NULL pixels
    result_bytes(ctx, state->as_uint8 ? state->sum.mean_uint8() : state->sum.mean_float32());
  });
}

// image_grid(pixels, shape, columns [, padding]): a PNG of the images in the order SQLite feeds them, in rows
// of `columns` with `padding` black pixels between them (ImageGrid), at most 64 MiB of pixels.
struct GridState {
  FirstRow first;
  ImageGrid grid;
};

std::unique_ptr<GridState> start_grid(int argc, sqlite3_value** argv) {
  FirstRow first("image_grid", argc, argv, {"columns", "padding"});
  ImageGrid grid(first.shape(), first.integer(0, 1), first.integer(1, 0), "image_grid()");
  return std::make_unique<GridState>(GridState{std::move(first), std::move(grid)});
}

void grid_step(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  pixels_step<GridState>(ctx, argc, argv, "image_grid", start_grid, [](GridState& s, auto px) { s.grid.add(px); });
}

void grid_final(sqlite3_context* ctx) noexcept {
  guarded(ctx, [&] {
    const std::unique_ptr<GridState> state = take_state<GridState>(ctx);
    if (state == nullptr) return sqlite3_result_null(ctx);  // no rows, or only NULL pixels
    std::vector<std::uint8_t> png;
    png_encode(state->grid.pixels(), state->grid.shape(), 6, png, "image_grid()");
    result_bytes(ctx, png);
  });
}

}  // namespace

int register_image_functions(sqlite3* db) {
  constexpr int pure = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  struct Aggregate {
    const char* name;
    int args;
    void (*step)(sqlite3_context*, int, sqlite3_value**);
    void (*final)(sqlite3_context*);
  };
  const Aggregate aggregates[] = {
      {"image_mean", 2, mean_step, mean_final}, {"image_mean", 3, mean_step, mean_final},
      {"image_grid", 3, grid_step, grid_final}, {"image_grid", 4, grid_step, grid_final},
  };
  for (const auto& a : aggregates) {
    const int rc = sqlite3_create_function_v2(db, a.name, a.args, pure, nullptr, nullptr, a.step, a.final, nullptr);
    if (rc != SQLITE_OK) return rc;
  }
  return SQLITE_OK;
}

}  // namespace imgstore
