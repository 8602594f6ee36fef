#include "raw_baselines.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <lmdb.h>
#include <png.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "digest.hpp"
#include "hdf5_format.hpp"
#include "lmdb_format.hpp"
#include "png_dir_format.hpp"
#include "raw_sqlite.hpp"
#include "png_codec.hpp"  // png_colour_type only (header-only): the baseline encodes with libpng itself

namespace raw {

namespace {

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error("raw baseline: " + what); }

// --- LMDB: the lmdb module's layout (lmdb_format.hpp, format 2): an environment directory, the images in the main
// database, each value the label, the checksum and the pixels. The raw reader checks each checksum as the table does
// by default (verify=1), so both sides do the same work.

namespace lf = imgstore::lmdb_format;
constexpr lf::Version kLmdbFormat = lf::Version::v2;

class LmdbStore final : public Store {
 public:
  LmdbStore(const std::string& path, bool create) {
    if (create) std::filesystem::create_directories(path);
    if (mdb_env_create(&env_) != 0) fail("mdb_env_create");
    mdb_env_set_mapsize(env_, std::size_t{8} << 30);
    if (const int rc = mdb_env_open(env_, path.c_str(), MDB_NOTLS | (create ? 0 : MDB_RDONLY), 0664); rc != 0) {
      fail("mdb_env_open " + path + ": " + mdb_strerror(rc));
    }
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env_, nullptr, create ? 0 : MDB_RDONLY, &txn);
    if (mdb_dbi_open(txn, nullptr, 0, &dbi_) != 0) fail("mdb_dbi_open");
    mdb_txn_commit(txn);
  }
  ~LmdbStore() override { mdb_env_close(env_); }

  void write(const Images& images) override {
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, 0, &txn) != 0) fail("mdb_txn_begin");
    for (std::size_t i = 0; i < images.n(); ++i) {
      unsigned char k[lf::key_bytes];
      lf::encode_key(images.ids[i], k);
      MDB_val key{lf::key_bytes, k};
      MDB_val value{lf::value_bytes(kLmdbFormat, images.bytes()), nullptr};
      if (mdb_put(txn, dbi_, &key, &value, MDB_RESERVE | MDB_APPEND) != 0) fail("mdb_put");
      lf::encode_value(kLmdbFormat, images.ids[i], images.labels[i], images.image(i),
                       {static_cast<std::uint8_t*>(value.mv_data), value.mv_size});
    }
    if (mdb_txn_commit(txn) != 0) fail("mdb_txn_commit");
  }

  Digest read_all() override { return read(nullptr); }
  Digest read_one(std::int64_t id) override { return read(&id); }

  // One read transaction per batch (the SQL path takes one snapshot per statement), an mdb_get per id.
  Digest read_batch(std::span<const std::int64_t> ids) override {
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn) != 0) fail("mdb_txn_begin");
    Digest d;
    for (const auto id : ids) {
      unsigned char k[lf::key_bytes];
      lf::encode_key(id, k);
      MDB_val key{lf::key_bytes, k};
      MDB_val value;
      if (mdb_get(txn, dbi_, &key, &value) != 0) continue;
      add(d, id, value);
    }
    mdb_txn_abort(txn);
    return d;
  }

 private:
  // The row's digest, its checksum checked first.
  static void add(Digest& d, std::int64_t id, const MDB_val& value) {
    const auto v = lf::decode_value(kLmdbFormat, {static_cast<const std::uint8_t*>(value.mv_data), value.mv_size},
                                    value.mv_size - lf::header_bytes(kLmdbFormat));
    if (!v || lf::expected_checksum(id, *v) != v->checksum) fail("image " + std::to_string(id) + " is damaged");
    d.sum += imgstore::row_digest(id, v->label, v->pixels);
    ++d.count;
  }

  Digest read(const std::int64_t* only) {
    MDB_txn* txn = nullptr;
    mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
    Digest d;
    if (only != nullptr) {
      unsigned char k[lf::key_bytes];
      lf::encode_key(*only, k);
      MDB_val key{lf::key_bytes, k};
      MDB_val value;
      if (mdb_get(txn, dbi_, &key, &value) == 0) add(d, *only, value);
    } else {
      MDB_cursor* cur = nullptr;
      mdb_cursor_open(txn, dbi_, &cur);
      MDB_val key;
      MDB_val value;
      while (mdb_cursor_get(cur, &key, &value, MDB_NEXT) == 0) {
        add(d, lf::decode_key(static_cast<const unsigned char*>(key.mv_data)), value);
      }
      mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    return d;
  }

  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
};

// --- HDF5: the hdf5 module's layout (hdf5_format.hpp): /images (N,H,W,C) uint8 chunked alike, /labels, /ids.

namespace hdf5 = imgstore::hdf5;

hid_t chunk_cache() {
  const hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, hdf5::kChunkCache.slots, hdf5::kChunkCache.bytes, hdf5::kChunkCache.w0);
  return dapl;
}

class Hdf5Store final : public Store {
 public:
  Hdf5Store(const std::string& path, const Images& layout, bool create) : layout_(layout) {
    chunk_ = hdf5::default_chunk_rows(layout.bytes());
    file_ = create ? H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)
                   : H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file_ < 0) fail("cannot open " + path);
    if (create) return;
    // What the hdf5 module does at open: the ids and labels in memory, an id -> row index.
    dapl_ = chunk_cache();
    images_ = H5Dopen2(file_, hdf5::kImages, dapl_);
    const hid_t space = H5Dget_space(images_);
    hsize_t dims[4];
    H5Sget_simple_extent_dims(space, dims, nullptr);
    H5Sclose(space);
    ids_.resize(dims[0]);
    labels_.resize(dims[0]);
    const hid_t idset = H5Dopen2(file_, hdf5::kIds, H5P_DEFAULT);
    const hid_t lset = H5Dopen2(file_, hdf5::kLabels, H5P_DEFAULT);
    if (dims[0] > 0) {
      H5Dread(idset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids_.data());
      H5Dread(lset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels_.data());
    }
    H5Dclose(idset);
    H5Dclose(lset);
    for (hsize_t r = 0; r < dims[0]; ++r) index_.emplace(ids_[r], r);
  }
  ~Hdf5Store() override {
    if (images_ >= 0) H5Dclose(images_);
    if (dapl_ >= 0) H5Pclose(dapl_);
    H5Fclose(file_);
  }

  void write(const Images& images) override {
    const hsize_t n = images.n();
    const hsize_t dims[4] = {n, images.height, images.width, images.channels};
    const hsize_t max[4] = {H5S_UNLIMITED, images.height, images.width, images.channels};
    const hsize_t chunk[4] = {chunk_, images.height, images.width, images.channels};
    const hid_t space = H5Screate_simple(4, dims, max);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, chunk);
    const hid_t dapl = chunk_cache();
    const hid_t dset = H5Dcreate2(file_, hdf5::kImages, H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, dapl);
    if (n > 0 && H5Dwrite(dset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, images.pixels.data()) < 0) fail("H5Dwrite");
    const hsize_t one[1] = {n};
    const hsize_t one_max[1] = {H5S_UNLIMITED};
    const hsize_t one_chunk[1] = {hdf5::row_chunk_rows(chunk_)};
    const hid_t space1 = H5Screate_simple(1, one, one_max);
    const hid_t dcpl1 = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl1, 1, one_chunk);
    for (const auto& [name, data] : {std::pair{hdf5::kLabels, &images.labels}, std::pair{hdf5::kIds, &images.ids}}) {
      const hid_t d = H5Dcreate2(file_, name, H5T_STD_I64LE, space1, H5P_DEFAULT, dcpl1, H5P_DEFAULT);
      if (n > 0 && H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, data->data()) < 0) fail("H5Dwrite");
      H5Dclose(d);
    }
    H5Fflush(file_, H5F_SCOPE_GLOBAL);
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file_, H5P_DEFAULT, &handle) >= 0) ::fsync(*static_cast<int*>(handle));
    H5Dclose(dset);
    H5Sclose(space);
    H5Sclose(space1);
    H5Pclose(dcpl);
    H5Pclose(dcpl1);
    H5Pclose(dapl);
  }

  Digest read_all() override {
    // Blocks of whole chunks, about 4 MiB, like the module's scans.
    const hsize_t block = hdf5::block_rows(chunk_, layout_.bytes(), hdf5::kScanBlockBytes);
    Digest d;
    for (hsize_t row = 0; row < ids_.size(); row += block) read_rows(row, std::min<hsize_t>(block, ids_.size() - row), d);
    return d;
  }

  Digest read_one(std::int64_t id) override {
    Digest d;
    if (const auto it = index_.find(id); it != index_.end()) read_rows(it->second, 1, d);
    return d;
  }

  // An H5Dread of each id's row, found in the id -> row index.
  Digest read_batch(std::span<const std::int64_t> ids) override {
    Digest d;
    for (const auto id : ids) {
      if (const auto it = index_.find(id); it != index_.end()) read_rows(it->second, 1, d);
    }
    return d;
  }

 private:
  void read_rows(hsize_t row, hsize_t count, Digest& d) {
    const std::size_t bytes = layout_.bytes();
    buffer_.resize(count * bytes);
    const hsize_t start[4] = {row, 0, 0, 0};
    const hsize_t cnt[4] = {count, layout_.height, layout_.width, layout_.channels};
    const hid_t fspace = H5Dget_space(images_);
    H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, cnt, nullptr);
    const hid_t mspace = H5Screate_simple(4, cnt, nullptr);
    if (H5Dread(images_, H5T_NATIVE_UINT8, mspace, fspace, H5P_DEFAULT, buffer_.data()) < 0) fail("H5Dread");
    H5Sclose(mspace);
    H5Sclose(fspace);
    for (hsize_t i = 0; i < count; ++i) {
      d.sum += imgstore::row_digest(ids_[row + i], labels_[row + i], {buffer_.data() + i * bytes, bytes});
      ++d.count;
    }
  }

  const Images& layout_;
  hsize_t chunk_ = 1;
  hid_t file_ = -1;
  hid_t images_ = -1;
  hid_t dapl_ = -1;
  std::vector<std::int64_t> ids_;
  std::vector<std::int64_t> labels_;
  std::map<std::int64_t, hsize_t> index_;
  std::vector<std::uint8_t> buffer_;
};

// --- PNG: the png_dir layout (png_dir_format.hpp): <id>.png at zlib level 6 (the png_dir default), labels.csv.

namespace pf = imgstore::png_dir_format;

constexpr int kPngLevel = 6;

struct Input {
  const std::vector<std::uint8_t>* bytes;
  std::size_t offset;
};

class PngStore final : public Store {
 public:
  PngStore(const std::string& dir, const Images& layout, bool create) : dir_(dir), layout_(layout) {
    if (create) {
      std::filesystem::create_directories(dir);
      return;
    }
    // What png_dir does at open: labels.csv read into an id -> label map.
    std::ifstream csv(dir + "/" + pf::labels_file);
    const std::string text((std::istreambuf_iterator<char>(csv)), std::istreambuf_iterator<char>());
    labels_ = pf::parse_labels_csv(text, dir);
  }

  void write(const Images& images) override { write(images, true); }

  void write(const Images& images, bool sync) {
    pf::Labels labels;
    for (std::size_t i = 0; i < images.n(); ++i) {
      write_file(dir_ + "/" + pf::image_name(images.ids[i]), images, i);
      labels.emplace(images.ids[i], images.labels[i]);
    }
    std::ofstream(dir_ + "/" + pf::labels_file) << pf::labels_csv(labels);
    if (!sync) return;
    const int fd = ::open(dir_.c_str(), O_RDONLY);
    ::syncfs(fd);  // the durability the png_dir commit gives
    ::close(fd);
  }

  Digest read_all() override {
    Digest d;
    for (const auto& [id, label] : labels_) add(id, label, d);
    return d;
  }

  Digest read_one(std::int64_t id) override {
    Digest d;
    if (const auto it = labels_.find(id); it != labels_.end()) add(id, it->second, d);
    return d;
  }

  // Each id's file read and decoded with libpng.
  Digest read_batch(std::span<const std::int64_t> ids) override {
    Digest d;
    for (const auto id : ids) {
      if (const auto it = labels_.find(id); it != labels_.end()) add(id, it->second, d);
    }
    return d;
  }

 private:
  void add(std::int64_t id, std::int64_t label, Digest& d) {
    read_file(dir_ + "/" + pf::image_name(id));
    d.sum += imgstore::row_digest(id, label, pixels_);
    ++d.count;
  }

  void write_file(const std::string& path, const Images& images, std::size_t i) {
    file_.clear();
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) fail("libpng write");
    png_set_write_fn(
        png, &file_,
        [](png_structp p, png_bytep data, png_size_t size) {
          auto* out = static_cast<std::vector<std::uint8_t>*>(png_get_io_ptr(p));
          out->insert(out->end(), data, data + size);
        },
        nullptr);
    png_set_IHDR(png, info, images.width, images.height, 8, imgstore::png_colour_type(images.channels), PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, kPngLevel);
    png_write_info(png, info);
    const std::size_t stride = std::size_t{images.width} * images.channels;
    for (std::uint32_t y = 0; y < images.height; ++y) png_write_row(png, const_cast<png_bytep>(images.image(i).data() + y * stride));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, file_.data(), file_.size()) != static_cast<ssize_t>(file_.size())) fail("write " + path);
    ::close(fd);
  }

  void read_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) fail("open " + path);
    struct stat st{};
    ::fstat(fd, &st);
    file_.resize(static_cast<std::size_t>(st.st_size));
    const ssize_t got = ::read(fd, file_.data(), file_.size());
    ::close(fd);
    file_.resize(static_cast<std::size_t>(std::max<ssize_t>(got, 0)));
    Input in{&file_, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) fail("libpng read " + path);
    png_set_read_fn(png, &in, [](png_structp p, png_bytep data, png_size_t size) {
      auto* input = static_cast<Input*>(png_get_io_ptr(p));
      if (input->offset + size > input->bytes->size()) png_error(p, "truncated");
      std::memcpy(data, input->bytes->data() + input->offset, size);
      input->offset += size;
    });
    png_read_info(png, info);
    png_read_update_info(png, info);
    pixels_.resize(layout_.bytes());
    rows_.resize(layout_.height);
    for (std::uint32_t y = 0; y < layout_.height; ++y) rows_[y] = pixels_.data() + std::size_t{y} * layout_.width * layout_.channels;
    png_read_image(png, rows_.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
  }

  const std::string dir_;
  const Images& layout_;
  std::map<std::int64_t, std::int64_t> labels_;
  std::vector<std::uint8_t> file_;
  std::vector<std::uint8_t> pixels_;
  std::vector<png_bytep> rows_;
};

std::unique_ptr<Store> make(const std::string& backend, const std::string& path, const Images& layout, bool create) {
  if (backend == "lmdb") return std::make_unique<LmdbStore>(path, create);
  if (backend == "hdf5") return std::make_unique<Hdf5Store>(path, layout, create);
  if (backend == "png_dir") return std::make_unique<PngStore>(path, layout, create);
  if (backend == "sqlite") return make_sqlite_store(path, create);
  fail("unknown backend " + backend);
}

}  // namespace

std::string Digest::text() const { return imgstore::digest_text(count, sum); }

std::unique_ptr<Store> create(const std::string& backend, const std::string& path, const Images& layout) {
  return make(backend, path, layout, true);
}

std::unique_ptr<Store> open(const std::string& backend, const std::string& path, const Images& layout) {
  return make(backend, path, layout, false);
}

void write_png_files(const std::string& dir, const Images& images, bool sync) {
  PngStore(dir, images, true).write(images, sync);
}

std::vector<std::vector<std::int64_t>> random_batches(std::int64_t n, std::int64_t batch, std::int64_t batches, std::int64_t seed) {
  if (n <= 0 || batch <= 0) return {};
  if (batches <= 0) batches = std::max<std::int64_t>(1, n / batch);
  std::vector<std::vector<std::int64_t>> out(static_cast<std::size_t>(batches));
  std::uint64_t x = static_cast<std::uint64_t>(seed) % 2147483648u;
  for (std::int64_t k = 0; k < batches * batch; ++k) {
    out[static_cast<std::size_t>(k / batch)].push_back(static_cast<std::int64_t>(x % static_cast<std::uint64_t>(n)));
    x = (x * 1103515245u + 12345u) % 2147483648u;
  }
  for (auto& b : out) {
    std::sort(b.begin(), b.end());
    b.erase(std::unique(b.begin(), b.end()), b.end());
  }
  return out;
}

Digest read_batches(Store& store, const std::vector<std::vector<std::int64_t>>& batches) {
  Digest all;
  for (const auto& b : batches) {
    const Digest d = store.read_batch(b);
    all.count += d.count;
    all.sum += d.sum;
  }
  return all;
}

}  // namespace raw
