// model_test: the differential tester's command line. Generates sequences of SQL statements from seeds,
// runs each against a store table and native SQLite tables (see runner.hpp), stops a seed at its first
// difference, shrinks the first failing seed and writes it as an sqltest.py script.
//
//   model_test --backend lmdb|hdf5|png_dir --extension build/imgstore.so --seeds 1..200 --statements 50
//              [--out failing.sql] [--out-dir DIR] [--skip-reader] [--skip-reader-scan] [--print] [--keep]
//              [--avoid float_limit,null_id,savepoint_txn,huge_float] [--fuzz-input FILE]   (triage: leave out triggers of known defects)
//
// IMGSTORE_MODEL_SEQUENCES=N (environment) runs seeds A..A+N-1 instead of the --seeds range, so CI can ask
// for more sequences than the quick default without changing the ctest command.
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <iostream>
#include <memory>
#include <string>

#include "generator.hpp"
#include "runner.hpp"

namespace {

int usage(const char* why) {
  std::cerr << "model_test: " << why << "\n"
            << "usage: model_test --backend lmdb|hdf5|png_dir --extension PATH [--seeds A..B] [--statements N]\n"
            << "                  [--out FILE] [--out-dir DIR] [--skip-reader] [--skip-reader-scan] [--print] [--keep]\n"
            << "  --out FILE     the first failing seed, shrunk, as an sqltest.py script\n"
            << "  --out-dir DIR  every failing seed, shrunk, as DIR/<backend>-seed<S>.sql\n"
            << "  --skip-reader  no second-process reader checks (hdf5: other processes are locked out)\n"
            << "  --skip-reader-scan  no scan held open in the other process across writer statements\n"
            << "                 (png_dir: a commit waits for the statements reading, then SQLITE_BUSY)\n"
            << "  --avoid LIST   triage only: leave out float_limit, null_id, savepoint_txn, huge_float (known defects)\n"
            << "  --fuzz-input F replay a fuzz_model input (its first byte is ignored: --backend decides)\n"
            << "  --print        print the generated statements of each seed, do not run them\n"
            << "  IMGSTORE_MODEL_SEQUENCES=N runs N seeds from A\n";
  return 2;
}

void print_sequence(const model::Sequence& seq) {
  std::cout << "-- seed " << seq.seed << ", shape " << seq.shape << "\n";
  for (std::size_t i = 0; i < seq.statements.size(); ++i) {
    const auto& st = seq.statements[i];
    std::cout << i << "\t" << model::kind_name(st.kind) << "\t" << st.sql << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string backend, extension, out, out_dir, fuzz_input;
  std::uint64_t first = 1, last = 20;
  int statements = 50;
  bool skip_reader = false, skip_reader_scan = false, print = false, keep = false;
  bool avoid_float_limit = false, avoid_null_id = false, avoid_savepoint_txn = false, avoid_huge_float = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(("missing value for " + a).c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--backend") {
      backend = value();
    } else if (a == "--extension") {
      extension = value();
    } else if (a == "--seeds") {
      const std::string v = value();
      const auto dots = v.find("..");
      try {
        first = std::stoull(v.substr(0, dots));
        last = dots == std::string::npos ? first : std::stoull(v.substr(dots + 2));
      } catch (...) {
        return usage("--seeds takes A..B");
      }
    } else if (a == "--statements") {
      statements = std::atoi(value().c_str());
    } else if (a == "--out") {
      out = value();
    } else if (a == "--out-dir") {
      out_dir = value();
    } else if (a == "--skip-reader") {
      skip_reader = true;
    } else if (a == "--skip-reader-scan") {
      skip_reader_scan = true;
    } else if (a == "--print") {
      print = true;
    } else if (a == "--avoid") {
      const std::string v = value();
      avoid_float_limit = v.find("float_limit") != std::string::npos;
      avoid_null_id = v.find("null_id") != std::string::npos;
      avoid_savepoint_txn = v.find("savepoint_txn") != std::string::npos;
      avoid_huge_float = v.find("huge_float") != std::string::npos;
    } else if (a == "--fuzz-input") {
      fuzz_input = value();
    } else if (a == "--keep") {
      keep = true;
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  if (backend != "lmdb" && backend != "hdf5" && backend != "png_dir") return usage("--backend is lmdb, hdf5 or png_dir");
  if (const char* n = std::getenv("IMGSTORE_MODEL_SEQUENCES"); n != nullptr && *n != '\0') {
    last = first + std::strtoull(n, nullptr, 10) - 1;
  }
  if (last < first || statements < 1) return usage("empty range");
  model::GeneratorOptions gen;
  gen.statements = statements;
  gen.avoid_float_limit = avoid_float_limit;
  gen.avoid_null_id = avoid_null_id;
  gen.avoid_savepoint_txn = avoid_savepoint_txn;
  gen.avoid_huge_float = avoid_huge_float;
  if (print) {
    for (std::uint64_t seed = first; seed <= last; ++seed) {
      model::RandomChoices choices(seed);
      auto seq = model::generate(choices, gen);
      seq.seed = seed;
      print_sequence(seq);
    }
    return 0;
  }
  if (extension.empty()) return usage("--extension is required");

  // The reader process is forked first, before any library has opened anything.
  std::unique_ptr<model::Reader> reader;
  if (!skip_reader) reader = std::make_unique<model::Reader>(extension);
  model::RunnerOptions options;
  options.backend = backend;
  options.extension = extension;
  options.reader = reader.get();
  options.keep_dir = keep;
  options.skip_reader_scan = skip_reader_scan;
  model::Runner runner(options);
  if (skip_reader_scan && !skip_reader) {
    std::cout << "NOTE: no scan held open in the other process across writer statements for " << backend
              << " (--skip-reader-scan): its commits wait for open scans, as SQLite's rollback journal does\n";
  }
  if (skip_reader) {
    std::cout << "NOTE: second-process reader checks skipped for " << backend
              << " (--skip-reader); only this process's connections are compared\n";
  }
  if (!out_dir.empty()) ::mkdir(out_dir.c_str(), 0777);

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::uint64_t> failing;
  bool shrunk_one = false;
  std::uint64_t sequences = 0;
  std::vector<std::uint8_t> fuzz_bytes;
  if (!fuzz_input.empty()) {
    std::ifstream in(fuzz_input, std::ios::binary);
    fuzz_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (fuzz_bytes.size() < 2) return usage("--fuzz-input: too short");
    last = first;
  }
  for (std::uint64_t seed = first; seed <= last; ++seed) {
    model::Sequence seq;
    if (fuzz_bytes.empty()) {
      model::RandomChoices choices(seed);
      seq = model::generate(choices, gen);
    } else {
      // As fuzz/fuzz_model.cpp generates it.
      model::ByteChoices choices(fuzz_bytes.data() + 1, fuzz_bytes.size() - 1);
      model::GeneratorOptions fg = gen;
      fg.statements = 24;
      fg.bulk_min = 20;
      fg.bulk_max = 120;
      seq = model::generate(choices, fg);
    }
    seq.seed = seed;
    ++sequences;
    std::optional<model::Failure> failure;
    try {
      failure = runner.run(seq);
    } catch (const std::exception& e) {
      std::cout << "seed " << seed << ": tester error: " << e.what() << "\n";
      failing.push_back(seed);
      continue;
    }
    if (!failure) continue;
    failing.push_back(seed);
    std::cout << "FAIL " << backend << " seed " << seed << " " << model::describe(*failure) << std::endl;
    const bool write_out = !out.empty() && !shrunk_one;
    if (write_out || !out_dir.empty()) {
      const auto shrink_start = std::chrono::steady_clock::now();
      const model::Sequence small = model::shrink(runner, seq, *failure, 400, avoid_savepoint_txn);
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - shrink_start).count();
      const std::string title = "model_test --backend " + backend + " --seeds " + std::to_string(seed) + ".." +
                                std::to_string(seed) + " --statements " + std::to_string(statements) +
                                ": shrunk from " + std::to_string(seq.statements.size()) + " to " +
                                std::to_string(small.statements.size()) + " statements";
      const std::string script = model::regression_script(runner, small, title);
      std::vector<std::string> paths;
      if (write_out) paths.push_back(out);
      if (!out_dir.empty()) paths.push_back(out_dir + "/" + backend + "-seed" + std::to_string(seed) + ".sql");
      for (const auto& p : paths) {
        std::ofstream(p) << script;
        std::cout << "  shrunk to " << small.statements.size() << " statements in " << secs << " s: " << p << "\n";
      }
      shrunk_one = true;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << backend << ": " << sequences << " sequences x " << statements << " statements in " << secs << " s ("
            << sequences / secs << " sequences/s, " << sequences * statements / secs << " statements/s, shrinking included)\n";
  if (failing.empty()) {
    std::cout << "no differences\n";
    return 0;
  }
  std::cout << failing.size() << " failing seeds:";
  for (auto s : failing) std::cout << " " << s;
  std::cout << "\n";
  return 1;
}
