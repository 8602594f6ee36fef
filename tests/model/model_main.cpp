// model_test: the differential tester's command line. Generates sequences of SQL statements from seeds,
// runs each against a store table and native SQLite tables (see runner.hpp), stops a seed at its first
// difference, shrinks the first failing seed and writes it as an sqltest.py script.
//
//   model_test --backend lmdb|hdf5|png_dir --extension build/imgstore.so --seeds 1..200 --statements 50
//              [--out failing.sql] [--out-dir DIR] [--skip-reader] [--skip-reader-scan] [--skip-peer] [--print] [--keep]
//              [--any] [--own-scan]
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
#include <optional>
#include <string>
#include <vector>

#include "generator.hpp"
#include "runner.hpp"

namespace {

int usage(const char* why) {
  std::cerr << "model_test: " << why << "\n"
            << "usage: model_test --backend lmdb|hdf5|png_dir --extension PATH [--seeds A..B] [--statements N]\n"
            << "                  [--out FILE] [--out-dir DIR] [--skip-reader] [--skip-reader-scan] [--print] [--keep]\n"
            << "  --out FILE     the first failing seed, shrunk, as an sqltest.py script\n"
            << "  --out-dir DIR  every failing seed, shrunk, as DIR/<backend>-seed<S>.sql\n"
            << "  --shards N     the store table is a sharded table of N shards\n"
            << "  --any          a store of shape 'any': rows of random sizes (1..4 in each of height, width, channels),\n"
            << "                 the native table has height, width, channels columns and they are compared too\n"
            << "  --skip-reader  no second-process reader checks (hdf5: other processes are locked out)\n"
            << "  --skip-reader-scan  no scan held open in the other process across writer statements\n"
            << "                 (png_dir: a commit waits for the statements reading, then SQLITE_BUSY)\n"
            << "  --own-scan     the writer's own connection also holds a scan of the store open across its statements\n"
            << "  --skip-peer    no second connection in this process reading after every statement\n"
            << "  --avoid LIST   triage only: leave out float_limit, null_id, savepoint_txn, huge_float (known defects)\n"
            << "  --fuzz-input F replay a fuzz_model input (its first byte's backend is ignored: --backend decides)\n"
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

// The command line.
struct Options {
  std::string backend, extension, out, out_dir, fuzz_input;
  std::uint64_t first = 1, last = 20;
  int statements = 50;
  bool skip_reader = false, skip_reader_scan = false, skip_peer = false, print = false, keep = false;
  int shards = 0;
  model::GeneratorOptions gen;  // --avoid; its statement count is --statements, set once the range is checked
};

// What the seeds gave.
struct Tally {
  std::vector<std::uint64_t> failing;
  bool shrunk_one = false;
  std::uint64_t sequences = 0;
};

// Fills o from argv; a non-zero return is the exit status (usage printed).
int parse_args(int argc, char** argv, Options& o) {
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
      o.backend = value();
    } else if (a == "--extension") {
      o.extension = value();
    } else if (a == "--seeds") {
      const std::string v = value();
      const auto dots = v.find("..");
      try {
        o.first = std::stoull(v.substr(0, dots));
        o.last = dots == std::string::npos ? o.first : std::stoull(v.substr(dots + 2));
      } catch (...) {
        return usage("--seeds takes A..B");
      }
    } else if (a == "--statements") {
      o.statements = std::atoi(value().c_str());
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--out-dir") {
      o.out_dir = value();
    } else if (a == "--own-scan") {
      o.gen.own_scan = true;
    } else if (a == "--any") {
      o.gen.any_shape = true;
    } else if (a == "--shards") {
      o.shards = std::atoi(value().c_str());
    } else if (a == "--skip-reader") {
      o.skip_reader = true;
    } else if (a == "--skip-reader-scan") {
      o.skip_reader_scan = true;
    } else if (a == "--skip-peer") {
      o.skip_peer = true;
    } else if (a == "--print") {
      o.print = true;
    } else if (a == "--avoid") {
      const std::string v = value();
      o.gen.avoid_float_limit = v.find("float_limit") != std::string::npos;
      o.gen.avoid_null_id = v.find("null_id") != std::string::npos;
      o.gen.avoid_savepoint_txn = v.find("savepoint_txn") != std::string::npos;
      o.gen.avoid_huge_float = v.find("huge_float") != std::string::npos;
    } else if (a == "--fuzz-input") {
      o.fuzz_input = value();
    } else if (a == "--keep") {
      o.keep = true;
    } else {
      return usage(("unknown argument " + a).c_str());
    }
  }
  return 0;
}

// The backend and the range of seeds (IMGSTORE_MODEL_SEQUENCES); a non-zero return is the exit status.
int check_range(Options& o) {
  if (o.backend != "lmdb" && o.backend != "hdf5" && o.backend != "png_dir") {
    return usage("--backend is lmdb, hdf5 or png_dir");
  }
  if (const char* n = std::getenv("IMGSTORE_MODEL_SEQUENCES"); n != nullptr && *n != '\0') {
    o.last = o.first + std::strtoull(n, nullptr, 10) - 1;
  }
  if (o.last < o.first || o.statements < 1) return usage("empty range");
  o.gen.statements = o.statements;
  return 0;
}

// The sequence of a seed, or of the fuzz input when one is given.
model::Sequence make_sequence(std::uint64_t seed, const model::GeneratorOptions& gen,
                              const std::vector<std::uint8_t>& fuzz_bytes) {
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
    fg.own_scan = fg.own_scan || model::fuzz_own_scan(fuzz_bytes[0]);
    seq = model::generate(choices, fg);
  }
  seq.seed = seed;
  return seq;
}

model::RunnerOptions runner_options(const Options& o, model::Reader* reader) {
  model::RunnerOptions options;
  options.backend = o.backend;
  options.extension = o.extension;
  options.reader = reader;
  options.keep_dir = o.keep;
  options.shards = o.shards;
  options.skip_reader_scan = o.skip_reader_scan;
  options.peer = !o.skip_peer;
  return options;
}

void print_notes(const Options& o) {
  if (o.skip_reader_scan && !o.skip_reader) {
    std::cout << "NOTE: no scan held open in the other process across writer statements for " << o.backend
              << " (--skip-reader-scan): its commits wait for open scans, as SQLite's rollback journal does\n";
  }
  if (o.skip_reader) {
    std::cout << "NOTE: second-process reader checks skipped for " << o.backend
              << " (--skip-reader); only this process's connections are compared\n";
  }
}

// The failing sequence shrunk, as an sqltest.py script: to --out (write_out: the first failing seed) and
// into --out-dir.
void write_shrunk(model::Runner& runner, const Options& o, const model::Sequence& seq, const model::Failure& failure,
                  bool write_out) {
  const auto shrink_start = std::chrono::steady_clock::now();
  const model::Sequence small = model::shrink(runner, seq, failure, 400, o.gen.avoid_savepoint_txn);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - shrink_start).count();
  const std::string title = "model_test --backend " + o.backend + (o.gen.any_shape ? " --any" : "") + (o.gen.own_scan ? " --own-scan" : "") + " --seeds " +
                            std::to_string(seq.seed) + ".." + std::to_string(seq.seed) + " --statements " +
                            std::to_string(o.statements) +
                            ": shrunk from " + std::to_string(seq.statements.size()) + " to " +
                            std::to_string(small.statements.size()) + " statements";
  const std::string script = model::regression_script(runner, small, title);
  std::vector<std::string> paths;
  if (write_out) paths.push_back(o.out);
  if (!o.out_dir.empty()) paths.push_back(o.out_dir + "/" + o.backend + "-seed" + std::to_string(seq.seed) + ".sql");
  for (const auto& p : paths) {
    std::ofstream(p) << script;
    std::cout << "  shrunk to " << small.statements.size() << " statements in " << secs << " s: " << p << "\n";
  }
}

// Runs one sequence; a failing one is reported, shrunk and written as asked.
void run_sequence(model::Runner& runner, const Options& o, const model::Sequence& seq, Tally& tally) {
  ++tally.sequences;
  std::optional<model::Failure> failure;
  try {
    failure = runner.run(seq);
  } catch (const std::exception& e) {
    std::cout << "seed " << seq.seed << ": tester error: " << e.what() << "\n";
    tally.failing.push_back(seq.seed);
    return;
  }
  if (!failure) return;
  tally.failing.push_back(seq.seed);
  std::cout << "FAIL " << o.backend << " seed " << seq.seed << " " << model::describe(*failure) << std::endl;
  const bool write_out = !o.out.empty() && !tally.shrunk_one;
  if (write_out || !o.out_dir.empty()) {
    write_shrunk(runner, o, seq, *failure, write_out);
    tally.shrunk_one = true;
  }
}

int summary(const Options& o, const Tally& tally, double secs) {
  std::cout << o.backend << ": " << tally.sequences << " sequences x " << o.statements << " statements in " << secs
            << " s (" << tally.sequences / secs << " sequences/s, " << tally.sequences * o.statements / secs
            << " statements/s, shrinking included)\n";
  if (tally.failing.empty()) {
    std::cout << "no differences\n";
    return 0;
  }
  std::cout << tally.failing.size() << " failing seeds:";
  for (auto s : tally.failing) std::cout << " " << s;
  std::cout << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (const int status = parse_args(argc, argv, o); status != 0) return status;
  if (const int status = check_range(o); status != 0) return status;
  if (o.print) {
    for (std::uint64_t seed = o.first; seed <= o.last; ++seed) print_sequence(make_sequence(seed, o.gen, {}));
    return 0;
  }
  if (o.extension.empty()) return usage("--extension is required");

  // The reader process is forked first, before any library has opened anything.
  std::unique_ptr<model::Reader> reader;
  if (!o.skip_reader) reader = std::make_unique<model::Reader>(o.extension);
  model::Runner runner(runner_options(o, reader.get()));
  print_notes(o);
  if (!o.out_dir.empty()) ::mkdir(o.out_dir.c_str(), 0777);

  const auto start = std::chrono::steady_clock::now();
  std::vector<std::uint8_t> fuzz_bytes;
  if (!o.fuzz_input.empty()) {
    std::ifstream in(o.fuzz_input, std::ios::binary);
    fuzz_bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (fuzz_bytes.size() < 2) return usage("--fuzz-input: too short");
    o.last = o.first;
  }
  Tally tally;
  for (std::uint64_t seed = o.first; seed <= o.last; ++seed) {
    run_sequence(runner, o, make_sequence(seed, o.gen, fuzz_bytes), tally);
  }
  return summary(o, tally, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}
