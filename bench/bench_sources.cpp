// Sources: how much a table-valued function costs over reading its file.
//
//   build/bench/bench_sources [extension]
//
// Writes a CIFAR-10 directory of 5 batches x 10,000 records (the real training set's size and format, from
// synthetic pixels), then compares, in the same run: reading the files with read(2) in 1 MiB blocks (what
// `cat` does) vs SELECT count(*) FROM cifar10(dir), and vs a query that converts and reads every pixel.
// Also Fashion-MNIST's gzip IDX files: zlib alone vs idx().

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include "bench_util.hpp"

namespace {

std::uint64_t read_all(const std::vector<std::string>& files) {
  std::vector<char> block(1 << 20);
  std::uint64_t total = 0;
  for (const auto& f : files) {
    const int fd = ::open(f.c_str(), O_RDONLY);
    if (fd < 0) throw std::runtime_error("cannot open " + f);
    ssize_t got;
    while ((got = ::read(fd, block.data(), block.size())) > 0) total += static_cast<std::uint64_t>(got);
    ::close(fd);
  }
  return total;
}

std::uint64_t gunzip_all(const std::vector<std::string>& files) {
  std::vector<char> block(1 << 20);
  std::uint64_t total = 0;
  for (const auto& f : files) {
    gzFile gz = gzopen(f.c_str(), "rb");
    int got;
    while ((got = gzread(gz, block.data(), static_cast<unsigned>(block.size()))) > 0) total += static_cast<std::uint64_t>(got);
    gzclose(gz);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string extension = argc > 1 ? argv[1] : "build/imgstore";
  try {
    const auto dir = bench::scratch_dir("sources");
    const auto cifar = dir / "cifar-10-batches-bin";
    std::filesystem::create_directories(cifar);
    const bench::Dataset data(10000, 3072, 7);
    std::vector<std::string> files;
    for (int b = 1; b <= 5; ++b) {
      files.push_back((cifar / ("data_batch_" + std::to_string(b) + ".bin")).string());
      std::FILE* f = std::fopen(files.back().c_str(), "wb");
      for (std::size_t i = 0; i < data.n; ++i) {
        const auto label = static_cast<unsigned char>(data.labels[i]);
        std::fwrite(&label, 1, 1, f);
        std::fwrite(data.image(i), 1, data.bytes, f);
      }
      std::fclose(f);
    }
    bench::Db db(":memory:", extension);
    const std::string where = "'" + cifar.string() + "'";
    read_all(files);  // warm the page cache for both sides
    std::vector<bench::Row> rows;
    double best_cat = 1e9;
    double best_count = 1e9;
    double best_touch = 1e9;
    for (int k = 0; k < 3; ++k) {
      best_cat = std::min(best_cat, bench::timed([&] { read_all(files); }));
      best_count = std::min(best_count, bench::timed([&] {
                              if (db.scalar("SELECT count(*) FROM cifar10(" + where + ")") != 50000) throw std::runtime_error("count");
                            }));
      best_touch = std::min(best_touch, bench::timed([&] { db.scalar("SELECT sum(bench_touch(pixels)) FROM cifar10(" + where + ")"); }));
    }
    rows.push_back({"cifar10(): count(*) of 50,000", best_count, best_cat, "read(2) of the files (cat)", ""});
    rows.push_back({"cifar10(): every pixel converted to HWC and read", best_touch, best_cat, "read(2) of the files (cat)", ""});

    const std::string fm = "/usr/share/datasets/fashion-mnist/";
    const std::vector<std::string> gz = {fm + "train-images-idx3-ubyte.gz", fm + "train-labels-idx1-ubyte.gz"};
    double best_zlib = 1e9;
    double best_idx = 1e9;
    for (int k = 0; k < 3; ++k) {
      best_zlib = std::min(best_zlib, bench::timed([&] { gunzip_all(gz); }));
      best_idx = std::min(best_idx, bench::timed([&] {
                            db.scalar("SELECT sum(bench_touch(pixels)) FROM idx('" + gz[0] + "', '" + gz[1] + "')");
                          }));
    }
    rows.push_back({"idx(): Fashion-MNIST train (60,000), every pixel read", best_idx, best_zlib, "gzread of both files", "(per image: of 50,000)"});
    bench::print_report("Sources (best of 3)", 50000, rows);
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sources: %s\n", e.what());
    return 1;
  }
  return 0;
}
