// HDF5: the hdf5 virtual table against raw HDF5 C calls doing the same work, in the same run.
//
//   build/bench/bench_hdf5 [N] [extension]      (default 100000 images of 32x32x3)
//
// Bulk load: INSERT ... SELECT from a native table (one transaction) vs one H5Dwrite of the whole array plus
// its labels and ids, same chunking, flushed and fsynced. Full scan: every pixel byte read vs H5Dread in
// blocks of the same size. Point lookups in random order: SQL by id vs raw H5Dread of one row, through the
// same chunk cache settings. File sizes with and without gzip.

#include <hdf5.h>
#include <unistd.h>

#include <cstring>

#include "bench_util.hpp"
#include "hdf5_format.hpp"

namespace {

namespace fmt = imgstore::hdf5;

constexpr hsize_t kImageBytes = 32 * 32 * 3;
constexpr hsize_t kChunk = fmt::default_chunk_rows(kImageBytes);  // the extension's default, same layout

void check(herr_t rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string("HDF5: ") + what);
}

hid_t access_plist() {
  const hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, fmt::kChunkCache.slots, fmt::kChunkCache.bytes, fmt::kChunkCache.w0);
  return dapl;
}

// Writes the whole data set with one H5Dwrite per dataset.
void raw_load(const std::string& path, const bench::Dataset& data, int gzip) {
  const hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t n = data.n;
  const hsize_t dims[4] = {n, 32, 32, 3};
  const hsize_t max[4] = {H5S_UNLIMITED, 32, 32, 3};
  const hsize_t chunk[4] = {kChunk, 32, 32, 3};
  const hid_t space = H5Screate_simple(4, dims, max);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 4, chunk);
  if (gzip > 0) H5Pset_deflate(dcpl, static_cast<unsigned>(gzip));
  const hid_t dapl = access_plist();
  const hid_t images = H5Dcreate2(file, fmt::kImages, H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, dapl);
  check(H5Dwrite(images, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.pixels.data()), "write images");
  const hsize_t one[1] = {n};
  const hsize_t one_max[1] = {H5S_UNLIMITED};
  const hsize_t one_chunk[1] = {fmt::row_chunk_rows(kChunk)};
  const hid_t space1 = H5Screate_simple(1, one, one_max);
  const hid_t dcpl1 = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl1, 1, one_chunk);
  const hid_t labels = H5Dcreate2(file, fmt::kLabels, H5T_STD_I64LE, space1, H5P_DEFAULT, dcpl1, H5P_DEFAULT);
  check(H5Dwrite(labels, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.labels.data()), "write labels");
  std::vector<std::int64_t> ids(data.n);
  for (std::size_t i = 0; i < data.n; ++i) ids[i] = static_cast<std::int64_t>(i);
  const hid_t idset = H5Dcreate2(file, fmt::kIds, H5T_STD_I64LE, space1, H5P_DEFAULT, dcpl1, H5P_DEFAULT);
  check(H5Dwrite(idset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids.data()), "write ids");
  H5Fflush(file, H5F_SCOPE_GLOBAL);
  void* handle = nullptr;
  H5Fget_vfd_handle(file, H5P_DEFAULT, &handle);
  ::fsync(*static_cast<int*>(handle));
  for (hid_t id : {images, labels, idset}) H5Dclose(id);
  for (hid_t id : {space, space1}) H5Sclose(id);
  for (hid_t id : {dcpl, dcpl1, dapl}) H5Pclose(id);
  H5Fclose(file);
}

struct RawReader {
  hid_t file;
  hid_t images;
  hid_t dapl;
  explicit RawReader(const std::string& path) {
    file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    dapl = access_plist();
    images = H5Dopen2(file, "images", dapl);
  }
  ~RawReader() {
    H5Dclose(images);
    H5Pclose(dapl);
    H5Fclose(file);
  }
  void read(hsize_t row, hsize_t n, std::uint8_t* out) const {
    const hsize_t start[4] = {row, 0, 0, 0};
    const hsize_t count[4] = {n, 32, 32, 3};
    const hid_t fspace = H5Dget_space(images);
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, count, nullptr);
    const hid_t mspace = H5Screate_simple(4, count, nullptr);
    check(H5Dread(images, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, out), "read");
    H5Sclose(mspace);
    H5Sclose(fspace);
  }
};

// Bulk load, best of 3: each SQL load into a fresh file, the raw file written anew each time.
bench::Row bulk_load(bench::Db& db, const std::filesystem::path& dir, const bench::Dataset& data,
                     const std::string& raw_path) {
  double raw_time = 1e9;
  double sql_time = 1e9;
  for (int k = 0; k < 3; ++k) {
    const auto sql_path = (dir / ("vtab" + std::to_string(k) + ".h5")).string();
    std::filesystem::remove(raw_path);
    raw_time = std::min(raw_time, bench::timed([&] { raw_load(raw_path, data, 0); }));
    if (k > 0) db.exec("DROP TABLE t");
    db.exec("CREATE VIRTUAL TABLE t USING hdf5(path='" + sql_path + "', shape='32x32x3')");
    sql_time = std::min(sql_time, bench::timed([&] { db.exec("INSERT INTO t SELECT * FROM ref"); }));
  }
  return {"bulk load (INSERT ... SELECT, 1 txn)", sql_time, raw_time, "one raw H5Dwrite per dataset", "(best of 3)"};
}

// Full scan touching every byte: the raw reader uses the same 4 MiB blocks of whole chunks.
bench::Row full_scan(bench::Db& db, const RawReader& raw, std::size_t n) {
  std::uint64_t raw_sum = 0;
  const hsize_t block = fmt::block_rows(kChunk, kImageBytes, fmt::kScanBlockBytes);
  std::vector<std::uint8_t> buffer(block * 3072);
  const double raw_scan = bench::timed([&] {
    for (hsize_t row = 0; row < n; row += block) {
      const hsize_t count = std::min<hsize_t>(block, n - row);
      raw.read(row, count, buffer.data());
      for (hsize_t i = 0; i < count; ++i) raw_sum += bench::touch32(buffer.data() + i * 3072, 3072);
    }
  });
  std::int64_t sql_sum = 0;
  const double sql_scan = bench::timed([&] { sql_sum = db.scalar("SELECT sum(bench_touch(pixels)) FROM t"); });
  if (static_cast<std::uint64_t>(sql_sum) != raw_sum) throw std::runtime_error("scan sums differ");
  return {"full scan, every byte read", sql_scan, raw_scan, "raw H5Dread in 4 MiB blocks", ""};
}

// Random point lookups.
bench::Row point_lookups(bench::Db& db, const RawReader& raw, const bench::Dataset& data) {
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  std::vector<std::uint8_t> one(3072);
  const double raw_get = bench::timed([&] {
    for (const auto id : data.lookup_order) {
      raw.read(static_cast<hsize_t>(id), 1, one.data());
      a += bench::touch(one.data(), one.size());
    }
  });
  const double sql_get = bench::timed([&] { b = db.lookups("t", data.lookup_order); });
  if (a != b) throw std::runtime_error("lookup sums differ");
  return {"point lookups, random order", sql_get, raw_get, "raw H5Dread of one row", ""};
}

// Sizes: random bytes do not compress; smooth synthetic images a little; Fashion-MNIST a lot.
void print_file_sizes(bench::Db& db, const std::filesystem::path& dir, std::size_t n) {
  std::printf("\nFile sizes (bytes, %zu images):\n\n| data | none | gzip:4 |\n|---|---:|---:|\n", n);
  const auto size_of = [&](const std::string& source, const std::string& shape, const std::string& compression, const std::string& name) {
    const auto path = (dir / (name + ".h5")).string();
    db.exec("CREATE VIRTUAL TABLE " + name + " USING hdf5(path='" + path + "', shape='" + shape + "', compression='" + compression + "')");
    db.exec("INSERT INTO " + name + " SELECT * FROM " + source);
    return db.scalar("SELECT file_bytes('" + path + "')");
  };
  const std::string count = std::to_string(n);
  const std::string fm = "/usr/share/datasets/fashion-mnist/";
  const std::string fashion = "(SELECT * FROM idx('" + fm + "train-images-idx3-ubyte.gz', '" + fm +
                              "train-labels-idx1-ubyte.gz') LIMIT " + count + ")";
  std::printf("| random bytes 32x32x3 | %lld | %lld |\n", static_cast<long long>(size_of("ref", "32x32x3", "none", "s1")),
              static_cast<long long>(size_of("ref", "32x32x3", "gzip:4", "s2")));
  const std::string smooth = "synthetic(" + count + ", '32x32x3', 1, 'smooth')";
  std::printf("| smooth synthetic 32x32x3 | %lld | %lld |\n", static_cast<long long>(size_of(smooth, "32x32x3", "none", "s3")),
              static_cast<long long>(size_of(smooth, "32x32x3", "gzip:4", "s4")));
  std::printf("| Fashion-MNIST 28x28x1 (first %s, at most 60,000) | %lld | %lld |\n", count.c_str(),
              static_cast<long long>(size_of(fashion, "28x28x1", "none", "s5")),
              static_cast<long long>(size_of(fashion, "28x28x1", "gzip:4", "s6")));
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoul(argv[1]) : 100000;
  const std::string extension = argc > 2 ? argv[2] : "build/imgstore";
  try {
    const auto dir = bench::scratch_dir("hdf5");
    const bench::Dataset data(n, 3072, 42);
    bench::Db db((dir / "native.db").string(), extension);
    db.load_native("ref", data);
    std::vector<bench::Row> rows;

    const auto raw_path = (dir / "raw.h5").string();
    rows.push_back(bulk_load(db, dir, data, raw_path));
    const RawReader raw(raw_path);
    rows.push_back(full_scan(db, raw, n));
    rows.push_back(point_lookups(db, raw, data));
    bench::print_report("HDF5, 32x32x3", n, rows);
    print_file_sizes(db, dir, n);
    std::filesystem::remove_all(dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_hdf5: %s\n", e.what());
    return 1;
  }
  return 0;
}
