// Scalar and aggregate functions:
//
//   SELECT png_encode(pixels, '32x32x3', 6) FROM train WHERE id = 1;   -- a PNG blob
//   SELECT png_decode(readfile('cat.png')), png_shape(readfile('cat.png'));
//   SELECT jpeg_encode(pixels, '32x32x3', 90), jpeg_decode(readfile('cat.jpg')), jpeg_shape(readfile('cat.jpg'));
//   SELECT pixel_hash(pixels) FROM train WHERE id = 1;                 -- XXH64, seed 0, as signed int64
//   SELECT image_digest(id, label, pixels) FROM train;                 -- order-independent 'count:hex'
//   SELECT disk_usage('train.lmdb'), file_bytes('train.lmdb');
//
// Pure functions are DETERMINISTIC | INNOCUOUS; the ones that touch files are DIRECTONLY. The pixel maths over
// many images, image_mean() and image_grid(), are in image_functions.cpp.

#include "functions.hpp"

#include "function_common.hpp"

#include <xxhash.h>

#include <memory>
#include <new>

#include "dataset.hpp"
#include "digest.hpp"
#include "disk_usage.hpp"
#include "error.hpp"
#include "image_functions.hpp"
#include "jpeg_codec.hpp"
#include "png_codec.hpp"
#include "registry.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

struct SqliteFree {
  void operator()(char* p) const noexcept { sqlite3_free(p); }
};

// text as an SQL string literal ('' for a quote), the form module arguments are parsed in: a path holding a
// quote must reach the store unchanged.
std::string sql_quoted(const std::string& text) {
  const std::unique_ptr<char, SqliteFree> quoted(sqlite3_mprintf("%Q", text.c_str()));
  if (!quoted) throw std::bad_alloc();
  return quoted.get();
}

void fn_png_encode(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const auto pixels = blob_arg(argv[0], "png_encode", "pixels");
    const Shape shape = parse_shape(text_arg(argv[1], "png_encode", "shape"), "png_encode(): shape");
    const int level = argc > 2 ? sqlite3_value_int(argv[2]) : 6;
    std::vector<std::uint8_t> out;
    png_encode(pixels, shape, level, out, "png_encode()");
    result_bytes(ctx, out);
  });
}

void fn_png_decode(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    std::vector<std::uint8_t> out;
    png_decode(blob_arg(argv[0], "png_decode", "png"), out, "png_decode()");
    result_bytes(ctx, out);
  });
}

void fn_png_shape(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const std::string shape = png_peek_shape(blob_arg(argv[0], "png_shape", "png"), "png_shape()").str();
    sqlite3_result_text(ctx, shape.c_str(), -1, SQLITE_TRANSIENT);
  });
}

// The JPEG counterparts, decoding as Pillow does (jpeg_codec.hpp): gray 1 channel, colour 3 (RGB), CMYK 4.
void fn_jpeg_encode(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const auto pixels = blob_arg(argv[0], "jpeg_encode", "pixels");
    const Shape shape = parse_shape(text_arg(argv[1], "jpeg_encode", "shape"), "jpeg_encode(): shape");
    int quality = 75;  // Pillow's default
    if (argc > 2) {
      if (sqlite3_value_type(argv[2]) != SQLITE_INTEGER) {
        throw Error("jpeg_encode(): quality must be an integer from 1 to 100", ErrorKind::mismatch);
      }
      const sqlite3_int64 q = sqlite3_value_int64(argv[2]);
      quality = q < 0 ? 0 : q > 1000 ? 1000 : static_cast<int>(q);  // out of range either way: said by the codec
    }
    std::vector<std::uint8_t> out;
    jpeg_encode(pixels, shape, quality, out, "jpeg_encode()");
    result_bytes(ctx, out);
  });
}

void fn_jpeg_decode(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    std::vector<std::uint8_t> out;
    jpeg_decode(blob_arg(argv[0], "jpeg_decode", "jpeg"), out, "jpeg_decode()");
    result_bytes(ctx, out);
  });
}

void fn_jpeg_shape(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const std::string shape = jpeg_peek(blob_arg(argv[0], "jpeg_shape", "jpeg"), "jpeg_shape()").shape.str();
    sqlite3_result_text(ctx, shape.c_str(), -1, SQLITE_TRANSIENT);
  });
}

void fn_pixel_hash(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const auto bytes = blob_arg(argv[0], "pixel_hash", "its argument");
    sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(XXH64(bytes.data(), bytes.size(), 0)));
  });
}

// image_digest(id, label, pixels): the sum, mod 2^64, of XXH64(pixels, seed = XXH64(id, label)) over all rows.
// A sum is independent of row order; seeding with id and label catches pixels or labels moved between ids.
struct Digest {
  std::uint64_t sum;
  std::uint64_t count;
};

void digest_step(sqlite3_context* ctx, int, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    auto* d = static_cast<Digest*>(sqlite3_aggregate_context(ctx, sizeof(Digest)));
    if (d == nullptr) throw std::bad_alloc();
    if (sqlite3_value_type(argv[0]) != SQLITE_INTEGER || sqlite3_value_type(argv[1]) != SQLITE_INTEGER) {
      throw Error("image_digest(): id and label must be integers", ErrorKind::mismatch);
    }
    const auto pixels = blob_arg(argv[2], "image_digest", "pixels");
    d->sum += row_digest(sqlite3_value_int64(argv[0]), sqlite3_value_int64(argv[1]), pixels);
    d->count += 1;
  });
}

void digest_final(sqlite3_context* ctx) noexcept {
  guarded(ctx, [&] {
    const auto* d = static_cast<Digest*>(sqlite3_aggregate_context(ctx, 0));
    const std::string text = digest_text(d ? d->count : 0, d ? d->sum : 0);  // allocates: may throw
    sqlite3_result_text(ctx, text.c_str(), -1, SQLITE_TRANSIENT);
  });
}

void fn_disk_usage(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(disk_usage(text_arg(argv[0], "disk_usage", "path")).allocated));
  });
}

void fn_file_bytes(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    sqlite3_result_int64(ctx, static_cast<sqlite3_int64>(disk_usage(text_arg(argv[0], "file_bytes", "path")).apparent));
  });
}

// imgstore_assert(condition, message): 1, or an error with the message when the condition is not true, so a
// script stops (the shell with .bail on, imgbench always) when a verification fails.
void fn_assert(sqlite3_context* ctx, int, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_int64(argv[0]) == 0) {
      const auto* message = reinterpret_cast<const char*>(sqlite3_value_text(argv[1]));
      throw Error(std::string("check failed: ") + (message ? message : "(no message)"));
    }
    sqlite3_result_int(ctx, 1);
  });
}

void fn_dataset_shape(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    if (any_null(argc, argv)) return sqlite3_result_null(ctx);
    const std::string shape = dataset_shape(text_arg(argv[0], "dataset_shape", "source")).str();
    sqlite3_result_text(ctx, shape.c_str(), -1, SQLITE_TRANSIENT);
  });
}

// imgstore_check(backend, path [, full]): 'ok', or the problems found, one per line. With full = 1 every
// image is read back (and, for png_dir, decoded and its size checked). It changes nothing, not even an
// interrupted commit (it reports it). imgstore_repair(backend, path) opens the store as a table would, which
// recovers an interrupted commit (hdf5: rolls back its journal; png_dir: finishes a recorded commit or removes an
// unfinished transaction's files), then checks it.
void check_or_repair(sqlite3_context* ctx, int argc, sqlite3_value** argv, bool repair) noexcept {
  guarded(ctx, [&] {
    const char* fn = repair ? "imgstore_repair" : "imgstore_check";
    const std::string backend = text_arg(argv[0], fn, "backend");
    const std::string path = text_arg(argv[1], fn, "path");
    const bool full = argc > 2 && sqlite3_value_int(argv[2]) != 0;
    std::vector<std::string> problems;
    try {
      const auto store = open_any_store(fn, {"backend=" + sql_quoted(backend), "path=" + sql_quoted(path)},
                                        repair ? OpenMode::must_exist : OpenMode::inspect);
      problems = store->check(full);
    } catch (const Error& e) {
      problems.push_back(e.what());  // a store that does not open is the first problem
    }
    std::string text;
    for (const auto& p : problems) text += (text.empty() ? "" : "\n") + p;
    if (text.empty()) text = "ok";
    sqlite3_result_text(ctx, text.c_str(), -1, SQLITE_TRANSIENT);
  });
}

void fn_check(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept { check_or_repair(ctx, argc, argv, false); }
void fn_repair(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept { check_or_repair(ctx, argc, argv, true); }

// imgstore_compact(backend, path): rewrites the store (each shard of a sharded table) without the space of
// deleted, replaced or rolled-back rows, atomically and beside readers (Store::compact); returns JSON
// {"rows": kept, "bytes_before": ..., "bytes_after": ...} (allocated bytes on disk).
void fn_compact(sqlite3_context* ctx, int, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    const std::string backend = text_arg(argv[0], "imgstore_compact", "backend");
    const std::string path = text_arg(argv[1], "imgstore_compact", "path");
    const auto store = open_any_store("imgstore_compact", {"backend=" + sql_quoted(backend), "path=" + sql_quoted(path)},
                                      OpenMode::must_exist);
    const Compacted done = store->compact();
    const std::string json = "{\"rows\": " + std::to_string(done.rows) + ", \"bytes_before\": " +
                             std::to_string(done.bytes_before) + ", \"bytes_after\": " + std::to_string(done.bytes_after) + "}";
    sqlite3_result_text(ctx, json.c_str(), -1, SQLITE_TRANSIENT);
  });
}

void fn_version(sqlite3_context* ctx, int, sqlite3_value**) noexcept { sqlite3_result_text(ctx, "imgstore 1.0", -1, SQLITE_STATIC); }

}  // namespace

int register_functions(sqlite3* db) {
  constexpr int pure = SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS;
  constexpr int files = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  struct Fn {
    const char* name;
    int args;
    int flags;
    void (*fn)(sqlite3_context*, int, sqlite3_value**);
  };
  const Fn scalars[] = {
      {"png_encode", 2, pure, fn_png_encode}, {"png_encode", 3, pure, fn_png_encode},
      {"png_decode", 1, pure, fn_png_decode}, {"png_shape", 1, pure, fn_png_shape},
      {"jpeg_encode", 2, pure, fn_jpeg_encode}, {"jpeg_encode", 3, pure, fn_jpeg_encode},
      {"jpeg_decode", 1, pure, fn_jpeg_decode}, {"jpeg_shape", 1, pure, fn_jpeg_shape},
      {"pixel_hash", 1, pure, fn_pixel_hash}, {"disk_usage", 1, files, fn_disk_usage},
      {"file_bytes", 1, files, fn_file_bytes}, {"imgstore_version", 0, pure, fn_version},
      {"imgstore_assert", 2, SQLITE_UTF8 | SQLITE_INNOCUOUS, fn_assert}, {"dataset_shape", 1, files, fn_dataset_shape},
      {"imgstore_check", 2, files, fn_check}, {"imgstore_check", 3, files, fn_check},
      {"imgstore_repair", 2, files, fn_repair}, {"imgstore_compact", 2, files, fn_compact},
  };
  for (const auto& f : scalars) {
    const int rc = sqlite3_create_function_v2(db, f.name, f.args, f.flags, nullptr, f.fn, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return rc;
  }
  if (const int rc = register_image_functions(db); rc != SQLITE_OK) return rc;
  return sqlite3_create_function_v2(db, "image_digest", 3, pure, nullptr, nullptr, digest_step, digest_final, nullptr);
}

}  // namespace imgstore
