// image_folder(): how fast a folder of small JPEGs decodes through SQL, on 1 and 2 worker threads, against a
// raw single-threaded TurboJPEG loop doing the same work (read each file, decode it to RGB).
//
//   build/bench/bench_image_folder [extension] [count] [HxW]
//
// Writes `count` (default 5,000) JPEGs of HxW (default 64x64) RGB in 10 class folders, quality 75 4:2:0 as
// Pillow saves them, from smooth synthetic images (photo-like, so the files are photo-sized: about 2 KB), reads
// them once to warm the page cache, then times (best of 3): the raw loop; SELECT count(*) (the walk alone);
// every pixel read with threads = 1 and 2; and resized to 32x32x3 with threads = 1 and 2. Also the peak
// resident memory of the process, which stays far below the decoded folder's size (image_folder streams).

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <thread>

#include "bench_util.hpp"
#include "jpeg_codec.hpp"
#include "synthetic.hpp"

namespace {

struct TjDestroy {
  void operator()(void* h) const noexcept { tjDestroy(h); }
};

// The raw baseline: the files in the walk's order, each read whole with open/fstat/read and decoded by
// TurboJPEG into one reused buffer (no conversion, no copy out), one thread.
std::uint64_t raw_decode(const std::vector<std::string>& files, std::size_t first = 0, std::size_t step = 1) {
  const std::unique_ptr<void, TjDestroy> tj(tjInitDecompress());
  std::vector<unsigned char> bytes;
  std::vector<unsigned char> pixels;
  std::uint64_t sum = 0;
  for (std::size_t i = first; i < files.size(); i += step) {
    const std::string& f = files[i];
    const int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st{};
    if (fd < 0 || ::fstat(fd, &st) != 0) throw std::runtime_error("cannot open " + f);
    bytes.resize(static_cast<std::size_t>(st.st_size));
    const ssize_t got = ::read(fd, bytes.data(), bytes.size());
    ::close(fd);
    if (got != st.st_size) throw std::runtime_error("short read of " + f);
    int w = 0, h = 0, sub = 0, cs = 0;
    if (tjDecompressHeader3(tj.get(), bytes.data(), bytes.size(), &w, &h, &sub, &cs) != 0) {
      throw std::runtime_error("header of " + f + ": " + tjGetErrorStr2(tj.get()));
    }
    pixels.resize(static_cast<std::size_t>(w) * static_cast<std::size_t>(h) * 3);
    if (tjDecompress2(tj.get(), bytes.data(), bytes.size(), pixels.data(), w, 0, h, TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
      throw std::runtime_error("decode of " + f + ": " + tjGetErrorStr2(tj.get()));
    }
    sum += bench::touch32(pixels.data(), pixels.size());
  }
  return sum;
}

// The same loop on two threads, each every other file: what this machine gives two threads at the time of the
// run (on a shared machine, often less than twice one).
void raw_decode_2(const std::vector<std::string>& files) {
  std::thread other([&] { raw_decode(files, 1, 2); });
  raw_decode(files, 0, 2);
  other.join();
}

long peak_rss_mib() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss / 1024;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string extension = argc > 1 ? argv[1] : "build/imgstore";
  const std::size_t count = argc > 2 ? std::stoul(argv[2]) : 5000;
  const imgstore::Shape shape = imgstore::parse_shape(std::string(argc > 3 ? argv[3] : "64x64") + "x3", "size");
  try {
    const auto dir = bench::scratch_dir("image-folder");
    imgstore::SyntheticOptions synth;
    synth.n = static_cast<std::int64_t>(count);
    synth.shape = shape;
    synth.kind = "smooth";
    std::vector<std::uint8_t> pixels(shape.bytes());
    std::vector<std::uint8_t> jpeg;
    std::vector<std::string> files;
    std::uint64_t file_bytes = 0;
    for (int c = 0; c < 10; ++c) std::filesystem::create_directories(dir / ("class" + std::to_string(c)));
    for (std::size_t i = 0; i < count; ++i) {
      imgstore::synthetic_image(synth, static_cast<std::int64_t>(i), pixels);
      imgstore::jpeg_encode(pixels, shape, 75, jpeg, "bench");
      char name[32];
      std::snprintf(name, sizeof name, "%06zu.jpg", i);
      files.push_back((dir / ("class" + std::to_string(i % 10)) / name).string());
      std::ofstream(files.back(), std::ios::binary).write(reinterpret_cast<const char*>(jpeg.data()),
                                                          static_cast<std::streamsize>(jpeg.size()));
      file_bytes += jpeg.size();
    }
    std::sort(files.begin(), files.end());  // the walk's order: class0/..., class1/..., names sorted
    raw_decode(files);                      // warms the page cache for every measure
    bench::Db db(":memory:", extension);
    const std::string root = "'" + dir.string() + "'";
    const auto scan = [&](const std::string& select) { return db.scalar("SELECT " + select); };
    double raw = 1e9, raw2 = 1e9, walk = 1e9, t1 = 1e9, t2 = 1e9, r1 = 1e9, r2 = 1e9;
    for (int k = 0; k < 3; ++k) {
      raw = std::min(raw, bench::timed([&] { raw_decode(files); }));
      raw2 = std::min(raw2, bench::timed([&] { raw_decode_2(files); }));
      walk = std::min(walk, bench::timed([&] {
                        if (scan("count(*) FROM image_folder(" + root + ")") != static_cast<std::int64_t>(count)) {
                          throw std::runtime_error("count");
                        }
                      }));
      t1 = std::min(t1, bench::timed([&] { scan("sum(bench_touch(pixels)) FROM image_folder(" + root + ", NULL, 1)"); }));
      t2 = std::min(t2, bench::timed([&] { scan("sum(bench_touch(pixels)) FROM image_folder(" + root + ", NULL, 2)"); }));
      r1 = std::min(r1, bench::timed([&] { scan("sum(bench_touch(pixels)) FROM image_folder(" + root + ", '32x32x3', 1)"); }));
      r2 = std::min(r2, bench::timed([&] { scan("sum(bench_touch(pixels)) FROM image_folder(" + root + ", '32x32x3', 2)"); }));
    }
    const std::string base = "TurboJPEG loop, 1 thread";
    std::vector<bench::Row> rows = {
        {"image_folder(): count(*) (the walk, no file opened)", walk, raw, base, ""},
        {"image_folder(): every pixel, threads = 1", t1, raw, base, ""},
        {"image_folder(): every pixel, threads = 2", t2, raw, base, ""},
        {"image_folder(): every pixel, threads = 2", t2, raw2, "TurboJPEG loop, 2 threads", ""},
        {"image_folder(): resized to 32x32x3 (Pillow BILINEAR), threads = 1", r1, raw, base, ""},
        {"image_folder(): resized to 32x32x3 (Pillow BILINEAR), threads = 2", r2, raw, base, ""},
    };
    bench::print_report("image_folder(): JPEGs of " + shape.str() + ", " +
                            std::to_string(file_bytes / count) + " bytes each (best of 3)",
                        count, rows);
    std::printf("\nRaw loop: %.0f images/s on 1 thread, %.0f on 2. image_folder: %.0f images/s on 1 thread, %.0f on 2. "
                "Decoded folder: %.1f MiB; peak resident memory of this process: %ld MiB.\n",
                static_cast<double>(count) / raw, static_cast<double>(count) / raw2, static_cast<double>(count) / t1,
                static_cast<double>(count) / t2,
                static_cast<double>(count * shape.bytes()) / (1 << 20), peak_rss_mib());
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_image_folder: %s\n", e.what());
    return 1;
  }
  return 0;
}
