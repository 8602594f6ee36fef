// The differential tester (tests/model) driven by libFuzzer: the input's first byte picks the backend (lmdb,
// hdf5, png_dir) and whether the writer holds a scan of its own open (generator.hpp, fuzz_own_scan); the rest
// is the generator's choice stream. The sequence runs against the store and the native SQLite table, and any
// difference aborts (__builtin_trap) after printing both results. No second process here (no fork under the
// fuzzer). The extension's sources are compiled into this binary with the fuzzer's instrumentation and
// registered with sqlite3_auto_extension; they call SQLite only through the sqlite3_api table that
// SQLITE_EXTENSION_INIT2 sets, so linking libsqlite3 here is safe.
#include <sqlite3.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "generator.hpp"
#include "runner.hpp"

extern "C" int sqlite3_imgstore_init(sqlite3* db, char** err, const sqlite3_api_routines* api);

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  sqlite3_auto_extension(reinterpret_cast<void (*)()>(sqlite3_imgstore_init));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  static const char* const backends[] = {"lmdb", "hdf5", "png_dir"};
  // IMGSTORE_FUZZ_BACKEND=png_dir (or lmdb, hdf5) fuzzes one backend only.
  static const char* only = std::getenv("IMGSTORE_FUZZ_BACKEND");
  const char* backend = only != nullptr ? only : backends[data[0] % 3];
  model::ByteChoices choices(data + 1, size - 1);
  model::GeneratorOptions gen;
  gen.statements = 24;
  gen.bulk_min = 20;  // fewer rows per bulk insert: more sequences per second
  gen.bulk_max = 120;
  gen.own_scan = model::fuzz_own_scan(data[0]);
  // IMGSTORE_FUZZ_AVOID=float_limit,null_id,savepoint_txn,huge_float leaves out the triggers of known defects
  // (as model_test --avoid), to look for others.
  static const std::string avoid = std::getenv("IMGSTORE_FUZZ_AVOID") ? std::getenv("IMGSTORE_FUZZ_AVOID") : "";
  gen.avoid_float_limit = avoid.find("float_limit") != std::string::npos;
  gen.avoid_null_id = avoid.find("null_id") != std::string::npos;
  gen.avoid_savepoint_txn = avoid.find("savepoint_txn") != std::string::npos;
  gen.avoid_huge_float = avoid.find("huge_float") != std::string::npos;
  const model::Sequence seq = model::generate(choices, gen);
  model::RunnerOptions options;
  options.backend = backend;
  model::Runner runner(options);
  const auto failure = runner.run(seq);
  if (failure) {
    std::fprintf(stderr, "fuzz_model: %s: %s\n", backend, model::describe(*failure).c_str());
    // IMGSTORE_FUZZ_OUT=FILE: the sequence, shrunk, as an sqltest.py script (scripts/fuzz sets it); or replay the
    // input with model_test --fuzz-input FILE --backend B (the generator is the same, whatever the compiler).
    if (const char* out = std::getenv("IMGSTORE_FUZZ_OUT"); out != nullptr && *out != '\0') {
      const model::Sequence small = model::shrink(runner, seq, *failure);
      const std::string script =
          model::regression_script(runner, small, std::string("fuzz_model, backend ") + backend + ": shrunk from " +
                                                     std::to_string(seq.statements.size()) + " to " +
                                                     std::to_string(small.statements.size()) + " statements");
      if (FILE* f = std::fopen(out, "w")) {
        std::fputs(script.c_str(), f);
        std::fclose(f);
        std::fprintf(stderr, "fuzz_model: shrunk sequence written to %s\n", out);
      }
    }
    __builtin_trap();
  }
  return 0;
}
