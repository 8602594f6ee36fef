// HDF5 backend.
//
// On disk (readable with h5py or h5dump, no imgstore code needed):
//   /images  (N, H, W, C) uint8, chunked (chunk rows x H x W x C), extendible in N, optionally gzip
//   /labels  (N) int64
//   /ids     (N) int64; -1 marks a deleted row (a tombstone)
//   root attributes: imgstore_format = "imgstore-hdf5 1", shape = "HxWxC", rows = the committed row count
// Rows past `rows` (left by a transaction that did not commit) are not part of the store; opening trims them.
// A row's id is in /ids, so rows need not be in id order; a scan goes in id order through an in-memory
// id -> row index built from /ids at open (8 bytes a row), so a point read never scans.
//
// Transactions: new rows are written past the committed count, a block of chunks per H5Dwrite; label changes
// and deletes are kept in memory. COMMIT writes /ids and /labels from the first changed row on, then the
// `rows` attribute, then flushes and fsyncs. ROLLBACK forgets the changes and trims the datasets back. A
// replaced image (OR REPLACE, UPDATE of pixels) is a new row plus a tombstone, so committed pixels are never
// overwritten in place. Deleted rows keep their space until the store is copied into a new one.
//
// HDF5 in Debian is not thread-safe: every HDF5 call runs under one process-wide mutex. HDF5's own error
// printing is switched off and its error stack becomes our message. A file is opened once per process (a
// registry by device+inode); HDF5's file lock keeps other processes out while it is open.

#include "hdf5_store.hpp"

#include <hdf5.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "args.hpp"
#include "busy.hpp"
#include "file_registry.hpp"
#include "hdf5_journal.hpp"
#include "undo_log.hpp"

namespace imgstore {

namespace {

constexpr const char* kFormat = "imgstore-hdf5 1";

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

using Lock = std::lock_guard<std::recursive_mutex>;

// HDF5's error stack as one line: the descriptions, innermost last.
std::string error_stack() {
  std::string text;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) noexcept -> herr_t {
        // A C callback: nothing may be thrown through HDF5's frames. Out of memory ends the walk early.
        try {
          auto& s = *static_cast<std::string*>(out);
          if (e->desc != nullptr && *e->desc != '\0') {
            if (!s.empty()) s += "; ";
            s += e->desc;
          }
          return 0;
        } catch (...) {
          return -1;
        }
      },
      &text);
  H5Eclear2(H5E_DEFAULT);
  return text.empty() ? "unknown HDF5 error" : text;
}

[[noreturn]] void fail(const std::string& what) {
  const std::string stack = error_stack();
  ErrorKind kind = ErrorKind::generic;
  if (stack.find("No space left") != std::string::npos || stack.find("errno = 28") != std::string::npos) kind = ErrorKind::full;
  if (stack.find("unable to lock file") != std::string::npos) kind = ErrorKind::busy;
  throw Error(what + " (" + stack + ")", kind);
}

// An HDF5 identifier closed by the matching H5?close.
class Hid {
 public:
  Hid() = default;
  Hid(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      close_ = o.close_;
      o.id_ = H5I_INVALID_HID;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  explicit operator bool() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_ != nullptr) close_(id_);
    id_ = H5I_INVALID_HID;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  herr_t (*close_)(hid_t) = nullptr;
};

Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& what) {
  if (id < 0) fail(what);
  return Hid(id, close);
}

void checked(herr_t rc, const std::string& what) {
  if (rc < 0) fail(what);
}

void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

struct Compression {
  int gzip = 0;  // 0: none, 1..9: deflate level
};

Compression parse_compression(const std::string& table, const std::string& text) {
  if (text == "none" || text.empty()) return {};
  if (text.rfind("gzip", 0) == 0) {
    if (text == "gzip") return {4};
    if (text.size() == 6 && text[4] == ':' && text[5] >= '1' && text[5] <= '9') return {text[5] - '0'};
  }
  throw Error("table " + table + ": compression '" + text + "' is not valid; expected 'none', 'gzip' or 'gzip:1' to 'gzip:9'",
              ErrorKind::mismatch);
}

// Rows per chunk when not given: about 64 KiB of pixels, so a random point read decompresses little while a
// scan still reads large blocks (see the benchmark).
std::uint64_t default_chunk_rows(const Shape& shape) {
  return std::clamp<std::uint64_t>((64 * 1024) / shape.bytes(), 1, 1024);
}

// One committed state of a file: what a statement reads, plus its own transaction's changes. Immutable once
// published: a commit publishes a new one, so a cursor that holds the old one never sees a commit halfway.
// The rows it names stay valid after later commits, which only append rows and change /ids and /labels.
struct Committed {
  std::uint64_t rows = 0;                       // committed row count
  std::vector<std::int64_t> row_ids;            // per committed row; -1 deleted
  std::vector<std::int64_t> row_labels;         // per committed row
  std::map<std::int64_t, std::uint64_t> index;  // live id -> row
};

// One open file per process, shared by every table on it.
class H5File {
 public:
  std::string path;
  Shape shape;
  std::uint64_t chunk_rows = 1;
  Hid file;
  Hid images;
  Hid labels;
  Hid ids;
  std::shared_ptr<const Committed> committed = std::make_shared<Committed>();
  bool writing = false;   // one transaction at a time per file
  bool writable = false;  // opened read-write: only once a transaction writes (reading must not change the file)

  ~H5File() {
    const Lock lock(hdf5_mutex());
    close();
  }

  void close() {
    ids.reset();
    labels.reset();
    images.reset();
    file.reset();
  }

  std::string where(const std::string& table) const { return "table " + table + ": '" + path + "'"; }

  std::vector<hsize_t> dims(std::uint64_t n) const {
    return {n, shape.height, shape.width, shape.channels};
  }

  // Reads or writes rows [row0, row0 + n) of a dataset (rank 4 images, or rank 1).
  void transfer(hid_t dset, bool write, std::uint64_t row0, std::uint64_t n, hid_t memtype, void* data,
                const std::string& what) const {
    const bool is_images = dset == images.get();
    const int rank = is_images ? 4 : 1;
    std::vector<hsize_t> start(static_cast<std::size_t>(rank), 0);
    std::vector<hsize_t> count = is_images ? dims(n) : std::vector<hsize_t>{n};
    start[0] = row0;
    const Hid fspace = checked(H5Dget_space(dset), H5Sclose, what);
    checked(H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr), what);
    const Hid mspace = checked(H5Screate_simple(rank, count.data(), nullptr), H5Sclose, what);
    if (write) {
      checked(H5Dwrite(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
    } else {
      checked(H5Dread(dset, memtype, mspace.get(), fspace.get(), H5P_DEFAULT, data), what);
    }
  }

  std::uint64_t extent(hid_t dset, const std::string& what) const {
    const Hid space = checked(H5Dget_space(dset), H5Sclose, what);
    hsize_t d[4] = {0, 0, 0, 0};
    if (H5Sget_simple_extent_dims(space.get(), d, nullptr) < 0) fail(what);
    return d[0];
  }

  void set_rows(std::uint64_t n, const std::string& what) const {
    checked(H5Dset_extent(images.get(), dims(n).data()), what);
    const hsize_t one[1] = {n};
    checked(H5Dset_extent(labels.get(), one), what);
    checked(H5Dset_extent(ids.get(), one), what);
  }

  void write_rows_attribute(std::uint64_t n, const std::string& what) const {
    const Hid attr = checked(H5Aopen(file.get(), "rows", H5P_DEFAULT), H5Aclose, what);
    const std::uint64_t value = n;
    checked(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &value), what);
  }

  // HDF5 cannot undo a write that failed half-way for want of space: its metadata stays half-updated and the
  // file can read back wrong. So every write first checks that the file system has room for it, with a margin
  // for HDF5's own metadata, and refuses cleanly, before writing anything, when it has not.
  void ensure_space(std::uint64_t bytes, const std::string& what) const {
    struct statvfs fs{};
    if (::statvfs(path.c_str(), &fs) != 0) return;
    const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
    const std::uint64_t needed = bytes + bytes / 8 + (2u << 20);
    if (free < needed) {
      throw Error(what + ": the file system is full (" + std::to_string(free) + " bytes free, this write needs about " +
                      std::to_string(needed) + "); the transaction was rolled back",
                  ErrorKind::full);
    }
  }

  // Flushes HDF5's buffers and makes them durable.
  void flush_and_sync(const std::string& what) const {
    checked(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), what);
    void* handle = nullptr;
    if (H5Fget_vfd_handle(file.get(), H5P_DEFAULT, &handle) >= 0 && handle != nullptr) {
      if (::fsync(*static_cast<int*>(handle)) != 0) {
        throw Error(what + ": fsync failed: " + std::strerror(errno), errno == ENOSPC ? ErrorKind::full : ErrorKind::generic);
      }
    }
  }
};

FileRegistry<H5File>& registry() {
  static FileRegistry<H5File> r;
  return r;
}

Hid dataset_access() {
  // A chunk cache big enough for a block of chunks being filled or read, with many slots to avoid collisions.
  Hid dapl = checked(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose, "H5Pcreate");
  checked(H5Pset_chunk_cache(dapl.get(), 12421, 32u << 20, 1.0), "H5Pset_chunk_cache");
  return dapl;
}

std::string read_string_attribute(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return {};
  const Hid attr(H5Aopen(obj, name, H5P_DEFAULT), H5Aclose);
  const Hid type(H5Aget_type(attr.get()), H5Tclose);
  if (!attr || !type || H5Tget_class(type.get()) != H5T_STRING) {
    H5Eclear2(H5E_DEFAULT);
    return {};
  }
  if (H5Tis_variable_str(type.get()) > 0) {
    char* value = nullptr;
    const Hid memtype(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(memtype.get(), H5T_VARIABLE);
    if (H5Aread(attr.get(), memtype.get(), &value) < 0 || value == nullptr) return {};
    std::string out(value);
    H5free_memory(value);
    return out;
  }
  const std::size_t size = H5Tget_size(type.get());
  std::string out(size, '\0');
  const Hid memtype(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(memtype.get(), size);
  if (H5Aread(attr.get(), memtype.get(), out.data()) < 0) return {};
  out.resize(std::strlen(out.c_str()));
  return out;
}

void write_string_attribute(hid_t obj, const char* name, const std::string& value, const std::string& what) {
  const Hid type = checked(H5Tcopy(H5T_C_S1), H5Tclose, what);
  checked(H5Tset_size(type.get(), value.size()), what);
  checked(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), what);
  const Hid space = checked(H5Screate(H5S_SCALAR), H5Sclose, what);
  const Hid attr = checked(H5Acreate2(obj, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, what);
  checked(H5Awrite(attr.get(), type.get(), value.data()), what);
}

void create_layout(H5File& f, const std::string& table, const Compression& compression, std::uint64_t chunk) {
  const std::string what = f.where(table) + ": creating the datasets";
  const auto make = [&](const char* name, hid_t type, int rank, const hsize_t* chunk_dims, bool compress) {
    std::vector<hsize_t> max(chunk_dims, chunk_dims + rank);
    std::vector<hsize_t> initial(chunk_dims, chunk_dims + rank);
    initial[0] = 0;
    max[0] = H5S_UNLIMITED;
    const Hid space = checked(H5Screate_simple(rank, initial.data(), max.data()), H5Sclose, what);
    const Hid dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, what);
    checked(H5Pset_chunk(dcpl.get(), rank, chunk_dims), what);
    if (compress && compression.gzip > 0) checked(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compression.gzip)), what);
    const Hid dapl = dataset_access();
    return checked(H5Dcreate2(f.file.get(), name, type, space.get(), H5P_DEFAULT, dcpl.get(), dapl.get()), H5Dclose, what);
  };
  const hsize_t image_chunk[4] = {chunk, f.shape.height, f.shape.width, f.shape.channels};
  const hsize_t row_chunk[1] = {std::max<hsize_t>(chunk, 1024)};
  f.images = make("images", H5T_STD_U8LE, 4, image_chunk, true);
  f.labels = make("labels", H5T_STD_I64LE, 1, row_chunk, false);
  f.ids = make("ids", H5T_STD_I64LE, 1, row_chunk, false);
  write_string_attribute(f.file.get(), "imgstore_format", kFormat, what);
  write_string_attribute(f.file.get(), "shape", f.shape.str(), what);
  const Hid space = checked(H5Screate(H5S_SCALAR), H5Sclose, what);
  const Hid attr = checked(H5Acreate2(f.file.get(), "rows", H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, what);
  const std::uint64_t zero = 0;
  checked(H5Awrite(attr.get(), H5T_NATIVE_UINT64, &zero), what);
  f.flush_and_sync(what);
}

// Opens /name and checks its type and rank; errors say what is missing or wrong.
Hid open_dataset(const H5File& f, const std::string& table, const char* name, int rank, bool is_uint8) {
  const std::string what = f.where(table);
  const std::string expected = std::string(is_uint8 ? "uint8 of rank 4 (N,H,W,C)" : "int64 of rank 1 (N)");
  if (H5Lexists(f.file.get(), name, H5P_DEFAULT) <= 0) {
    H5Eclear2(H5E_DEFAULT);
    throw Error(what + " is an HDF5 file without the dataset /" + name +
                    "; expected an imgstore store (datasets /images, /labels, /ids)",
                ErrorKind::cantopen);
  }
  const Hid dapl = dataset_access();
  Hid dset = checked(H5Dopen2(f.file.get(), name, dapl.get()), H5Dclose, what + ": opening /" + name);
  const Hid type = checked(H5Dget_type(dset.get()), H5Tclose, what);
  const Hid space = checked(H5Dget_space(dset.get()), H5Sclose, what);
  const bool integer = H5Tget_class(type.get()) == H5T_INTEGER;
  const std::size_t size = H5Tget_size(type.get());
  const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
  const bool type_ok = integer && (is_uint8 ? (size == 1 && !is_signed) : (size == 8 && is_signed));
  if (!type_ok) {
    throw Error(what + ": dataset /" + name + " has the wrong type (" + (integer ? "" : "not ") + "integer of " +
                    std::to_string(size) + " bytes); expected " + expected,
                ErrorKind::mismatch);
  }
  if (H5Sget_simple_extent_ndims(space.get()) != rank) {
    throw Error(what + ": dataset /" + name + " has rank " + std::to_string(H5Sget_simple_extent_ndims(space.get())) +
                    "; expected " + expected,
                ErrorKind::mismatch);
  }
  return dset;
}

// Opens the file with `flags` and its three datasets, checking their types, ranks and the stored shape.
void open_handles(H5File& f, const std::string& table, unsigned flags, const std::optional<Shape>& wanted) {
  const std::string what = f.where(table);
  f.file = checked(H5Fopen(f.path.c_str(), flags, H5P_DEFAULT), H5Fclose,
                   "table " + table + ": cannot open '" + f.path + "'" +
                       (flags == H5F_ACC_RDWR ? " for writing" : "") +
                       ": another process may be writing it (HDF5 locks the whole file), or it is damaged");
  // Files from other tools have no format attribute and are accepted if their datasets fit; ours must match.
  const std::string format = read_string_attribute(f.file.get(), "imgstore_format");
  if (!format.empty() && format != kFormat) {
    throw Error(what + " has format '" + format + "'; expected '" + kFormat + "'", ErrorKind::corrupt);
  }
  f.images = open_dataset(f, table, "images", 4, true);
  f.labels = open_dataset(f, table, "labels", 1, false);
  f.ids = open_dataset(f, table, "ids", 1, false);
  hsize_t d[4] = {0, 0, 0, 0};
  {
    const Hid space = checked(H5Dget_space(f.images.get()), H5Sclose, what);
    H5Sget_simple_extent_dims(space.get(), d, nullptr);
  }
  f.shape = make_shape(d[1], d[2], d[3], what + ": /images");
  if (wanted && *wanted != f.shape) throw shape_mismatch(table, *wanted, f.path, f.shape);
  const Hid dcpl = checked(H5Dget_create_plist(f.images.get()), H5Pclose, what);
  hsize_t chunk[4] = {1, 0, 0, 0};
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) H5Pget_chunk(dcpl.get(), 4, chunk);
  f.chunk_rows = std::max<hsize_t>(chunk[0], 1);
  f.writable = flags == H5F_ACC_RDWR;
}

// Reads the committed state (the rows attribute, /ids, /labels) and publishes it. Rows past the committed
// count, left by a transaction that did not commit, are ignored; the next writer trims them.
void load_committed(H5File& f, const std::string& table) {
  const std::string what = f.where(table);
  std::uint64_t rows = 0;
  if (H5Aexists(f.file.get(), "rows") > 0) {
    const Hid attr = checked(H5Aopen(f.file.get(), "rows", H5P_DEFAULT), H5Aclose, what);
    checked(H5Aread(attr.get(), H5T_NATIVE_UINT64, &rows), what + ": reading the rows attribute");
  } else {
    rows = f.extent(f.ids.get(), what);  // written by another tool: every row counts
  }
  const std::uint64_t n_images = f.extent(f.images.get(), what);
  const std::uint64_t n_labels = f.extent(f.labels.get(), what);
  const std::uint64_t n_ids = f.extent(f.ids.get(), what);
  if (rows > n_images || rows > n_labels || rows > n_ids) {
    throw Error(what + " says it has " + std::to_string(rows) + " rows but /images has " + std::to_string(n_images) +
                    ", /labels " + std::to_string(n_labels) + ", /ids " + std::to_string(n_ids) + " (damaged file)",
                ErrorKind::corrupt);
  }
  auto c = std::make_shared<Committed>();
  c->rows = rows;
  c->row_ids.resize(rows);
  c->row_labels.resize(rows);
  if (rows > 0) {
    f.transfer(f.ids.get(), false, 0, rows, H5T_NATIVE_INT64, c->row_ids.data(), what + ": reading /ids");
    f.transfer(f.labels.get(), false, 0, rows, H5T_NATIVE_INT64, c->row_labels.data(), what + ": reading /labels");
  }
  for (std::uint64_t r = 0; r < rows; ++r) {
    const std::int64_t id = c->row_ids[r];
    if (id < 0) continue;
    if (const auto [it, fresh] = c->index.emplace(id, r); !fresh) {
      throw Error(what + ": /ids holds id " + std::to_string(id) + " twice (rows " + std::to_string(it->second) + " and " +
                      std::to_string(r) + ")",
                  ErrorKind::corrupt);
    }
  }
  f.committed = std::move(c);
}

// Rolls back a commit that a crash interrupted after it began changing committed rows in place (see
// hdf5_journal.hpp). The file must be open read-write.
void roll_back_journal(H5File& f, const std::string& table, const Journal& journal) {
  const std::string what = f.where(table) + ": rolling back an interrupted commit (" + journal_path(f.path) + ")";
  for (const auto& e : journal.entries) {
    std::int64_t id = e.id;
    std::int64_t label = e.label;
    f.transfer(f.ids.get(), true, e.row, 1, H5T_NATIVE_INT64, &id, what);
    f.transfer(f.labels.get(), true, e.row, 1, H5T_NATIVE_INT64, &label, what);
  }
  f.write_rows_attribute(journal.rows, what);
  f.set_rows(journal.rows, what);
  f.flush_and_sync(what);
  remove_journal(f.path, what);
}

// Opens an existing store: read-only, unless a journal says a commit was interrupted, which is rolled back
// first (as SQLite rolls back a hot journal, even for a reader).
void open_existing(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode) {
  if (mode == OpenMode::inspect) {  // as it is: check() reports a journal, imgstore_repair rolls it back
    open_handles(f, table, H5F_ACC_RDONLY, wanted);
    load_committed(f, table);
    return;
  }
  const auto journal = read_journal(f.path, f.where(table));
  if (journal && !*journal) remove_journal(f.path, f.where(table));  // never completed: nothing changed in place
  const bool recover = journal && *journal;
  open_handles(f, table, recover ? H5F_ACC_RDWR : H5F_ACC_RDONLY, wanted);
  if (recover) roll_back_journal(f, table, **journal);
  load_committed(f, table);
}

// Reopens the file read-write for a transaction's first write, and trims rows an unfinished transaction left.
// Between closing and reopening, another process may have written (or crashed writing): so its journal is
// rolled back and the committed state read again, as at open.
void make_writable(H5File& f, const std::string& table) {
  if (f.writable) return;
  f.close();
  try {
    open_handles(f, table, H5F_ACC_RDWR, f.shape);
    if (const auto journal = read_journal(f.path, f.where(table))) {
      if (*journal) {
        roll_back_journal(f, table, **journal);
      } else {
        remove_journal(f.path, f.where(table));
      }
    }
    load_committed(f, table);
  } catch (const Error& e) {
    f.close();
    open_handles(f, table, H5F_ACC_RDONLY, f.shape);  // keep serving reads
    const bool locked = std::string(e.what()).find("unable to lock file") != std::string::npos;
    if (!locked) throw;
    throw Error("table " + table + ": '" + f.path + "' is open in another process, and HDF5 lets a writer have the file "
                "only alone; try again when the other process has closed it",
                ErrorKind::busy);
  }
  const std::string what = f.where(table) + ": trimming rows of an unfinished transaction";
  const std::uint64_t rows = f.committed->rows;
  if (f.extent(f.images.get(), what) > rows || f.extent(f.labels.get(), what) > rows || f.extent(f.ids.get(), what) > rows) {
    f.set_rows(rows, what);
  }
}

std::shared_ptr<H5File> open_file(const std::string& table, const std::string& path, const std::optional<Shape>& wanted,
                                  const Compression& compression, std::uint64_t chunk, OpenMode mode) {
  auto& reg = registry();
  const std::lock_guard reg_lock(reg.mutex());
  const Lock lock(hdf5_mutex());
  silence_hdf5();
  struct stat st{};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) {
    throw Error("table " + table + ": path '" + path + "' is a directory; expected an HDF5 file", ErrorKind::cantopen);
  }
  if (exists) {
    if (auto f = reg.find(st)) {
      if (wanted && *wanted != f->shape) {
        throw shape_mismatch(table, *wanted, path, f->shape);
      }
      return f;
    }
  }
  const bool fresh = !exists || st.st_size == 0;
  if (fresh && (!wanted || mode != OpenMode::create_if_missing)) throw_missing_store(table, path, mode);
  auto f = std::make_shared<H5File>();
  f->path = path;
  if (fresh) {
    f->shape = *wanted;
    f->chunk_rows = chunk > 0 ? chunk : default_chunk_rows(f->shape);
    f->file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                      "table " + table + ": cannot create '" + path + "'");
    f->writable = true;
    create_layout(*f, table, compression, f->chunk_rows);
  } else {
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw Error("table " + table + ": '" + path + "' is not an HDF5 file", ErrorKind::cantopen);
    }
    open_existing(*f, table, wanted, mode);
  }
  reg.add(path, table, f);
  return f;
}

class Hdf5Store;

class Hdf5Cursor final : public Cursor {
 public:
  Hdf5Cursor(Hdf5Store& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids);
  bool at_end() const override { return at_end_; }
  void next() override;
  std::int64_t id() const override { return walk_.id(); }
  std::int64_t label() override;
  std::span<const std::uint8_t> pixels() override;

 private:
  Hdf5Store& store_;
  const std::shared_ptr<const Committed> snapshot_;  // the committed state this statement reads
  IdWalk<std::uint64_t> walk_;                       // id -> row
  bool at_end_ = false;
  // Scans read a block of rows per H5Dread into this reused buffer.
  std::vector<std::uint8_t> block_;
  std::uint64_t block_first_ = 0;
  std::uint64_t block_rows_ = 0;
  std::uint64_t block_generation_ = 0;  // the store's generation when the block was read
  std::vector<std::uint8_t> single_;
};

class Hdf5Store final : public Store {
 public:
  Hdf5Store(std::string table, std::shared_ptr<H5File> file) : table_(std::move(table)), f_(std::move(file)) {}
  ~Hdf5Store() override {
    if (undo_.active()) {
      try {
        rollback();
      } catch (...) {
      }
    }
  }

  const Shape& shape() const override { return f_->shape; }
  const std::string& table() const { return table_; }
  H5File& file() { return *f_; }
  // The committed state a new statement reads (inside this table's transaction no other can commit).
  std::shared_ptr<const Committed> snapshot() const {
    const Lock lock(hdf5_mutex());
    return f_->committed;
  }

  std::uint64_t count() override {
    const Lock lock(hdf5_mutex());
    const Committed& c = *f_->committed;
    std::uint64_t n = c.index.size();
    for (const auto& [id, row] : overlay_) {
      const bool committed = c.index.contains(id);
      if (row && !committed) ++n;
      if (!row && committed) --n;
    }
    return n;
  }

  std::optional<std::int64_t> max_id() override {
    const Lock lock(hdf5_mutex());
    const Committed& c = *f_->committed;
    std::optional<std::int64_t> best;
    for (auto it = c.index.rbegin(); it != c.index.rend(); ++it) {
      const auto o = overlay_.find(it->first);
      if (o == overlay_.end() || o->second) {  // the committed maximum, unless this transaction deleted it
        best = it->first;
        break;
      }
    }
    if (const auto m = max_overlay(); m >= 0 && (!best || m > *best)) best = m;
    return best;
  }

  std::unique_ptr<Cursor> scan(IdRange range) override {
    return std::make_unique<Hdf5Cursor>(*this, range, std::vector<std::int64_t>{}, false);
  }
  std::unique_ptr<Cursor> lookup(std::vector<std::int64_t> ids) override {
    return std::make_unique<Hdf5Cursor>(*this, IdRange{}, std::move(ids), true);
  }

  // The row of a live id as this connection sees it: its transaction's changes over the snapshot `c`.
  std::optional<std::uint64_t> row_of(const Committed& c, std::int64_t id) const {
    const auto o = overlay_.find(id);
    if (o != overlay_.end()) return o->second;
    const auto it = c.index.find(id);
    if (it == c.index.end()) return std::nullopt;
    return it->second;
  }

  // The first live id >= from, with its row.
  std::optional<std::pair<std::int64_t, std::uint64_t>> first_from(const Committed& snap, std::int64_t from) const {
    auto c = snap.index.lower_bound(from);
    auto o = overlay_.lower_bound(from);
    while (true) {
      const bool has_c = c != snap.index.end();
      const bool has_o = o != overlay_.end();
      if (!has_c && !has_o) return std::nullopt;
      if (has_o && (!has_c || o->first <= c->first)) {
        if (has_c && c->first == o->first) ++c;  // the overlay decides for this id
        if (o->second) return std::pair{o->first, *o->second};
        ++o;
        continue;
      }
      return *c;
    }
  }

  std::int64_t label_at(const Committed& c, std::uint64_t row) const {
    if (row >= c.rows) return new_labels_[row - c.rows];
    const auto it = label_overlay_.find(row);
    return it != label_overlay_.end() ? it->second : c.row_labels[row];
  }

  // Rows written to the file so far (committed, plus this transaction's full blocks).
  std::uint64_t rows_in_file() const { return f_->committed->rows + flushed_; }
  // A new row still in the write buffer.
  const std::uint8_t* buffered(std::uint64_t row) const {
    if (row < rows_in_file()) return nullptr;
    return pending_.data() + (row - rows_in_file()) * shape().bytes();
  }
  std::uint64_t generation() const { return generation_; }

  void put(const Image& image, bool replace) override {
    const Lock lock(hdf5_mutex());
    undo_.require_active(table_, "INSERT");
    const auto existing = row_of(*f_->committed, image.id);
    if (existing && !replace) {
      throw Error("table " + table_ + ": id " + std::to_string(image.id) +
                      " already exists; expected a unique id (INSERT OR REPLACE overwrites)",
                  ErrorKind::constraint);
    }
    // Always a new row: committed pixels are never overwritten in place. The undo record is taken before the
    // row is counted, so undoing it also forgets the row.
    remember_id(image.id);
    const std::uint64_t row = f_->committed->rows + appended_;
    pending_.insert(pending_.end(), image.pixels.begin(), image.pixels.end());
    new_labels_.push_back(image.label);
    ++appended_;
    overlay_[image.id] = row;
    if (pending_.size() >= block_rows() * shape().bytes()) flush_block();
  }

  bool set_label(std::int64_t id, std::int64_t label) override {
    const Lock lock(hdf5_mutex());
    undo_.require_active(table_, "UPDATE");
    const Committed& c = *f_->committed;
    const auto row = row_of(c, id);
    if (!row) return false;
    if (*row >= c.rows) {
      undo_.push(Undo{Undo::kNewLabel, id, *row, new_labels_[*row - c.rows], std::nullopt, false, appended_});
      new_labels_[*row - c.rows] = label;
    } else {
      const auto old = label_overlay_.find(*row);
      undo_.push(Undo{Undo::kLabel, id, *row, old == label_overlay_.end() ? 0 : old->second, std::nullopt,
                      old != label_overlay_.end(), appended_});
      label_overlay_[*row] = label;
    }
    return true;
  }

  bool erase(std::int64_t id) override {
    const Lock lock(hdf5_mutex());
    undo_.require_active(table_, "DELETE");
    if (!row_of(*f_->committed, id)) return false;
    remember_id(id);
    overlay_[id] = std::nullopt;
    return true;
  }

  std::vector<std::string> check(bool full) override {
    const Lock lock(hdf5_mutex());
    std::vector<std::string> problems;
    const std::string what = f_->where(table_);
    const Committed& c = *f_->committed;
    try {
      for (const auto& [name, dset] : {std::pair{"images", f_->images.get()}, std::pair{"labels", f_->labels.get()},
                                       std::pair{"ids", f_->ids.get()}}) {
        const std::uint64_t n = f_->extent(dset, what);
        if (n < c.rows) {
          // Built with append: GCC 12 warns falsely (-Wrestrict) on "/" + std::string(...) chains.
          std::string problem = "/";
          problem.append(name).append(" has ").append(std::to_string(n)).append(" rows; the rows attribute says ");
          problem.append(std::to_string(c.rows));
          problems.push_back(problem);
        }
      }
      std::vector<std::int64_t> ids(c.rows);
      if (c.rows > 0) f_->transfer(f_->ids.get(), false, 0, c.rows, H5T_NATIVE_INT64, ids.data(), what + ": reading /ids");
      if (ids != c.row_ids) problems.push_back("/ids on disk differs from what was read at open");
      if (::access(journal_path(f_->path).c_str(), F_OK) == 0 && !f_->writing) {
        std::string problem = journal_path(f_->path);
        problem.append(" is left from an interrupted commit; imgstore_repair() (or the next table opened on it) rolls it back");
        problems.push_back(problem);
      }
      // Every chunk that holds committed rows must exist: HDF5 reads a missing chunk as zeros, silently.
      hsize_t chunks = 0;
      const Hid space = checked(H5Dget_space(f_->images.get()), H5Sclose, what);
      if (H5Dget_num_chunks(f_->images.get(), space.get(), &chunks) >= 0) {
        const std::uint64_t wanted = (c.rows + f_->chunk_rows - 1) / f_->chunk_rows;
        if (chunks < wanted) {
          problems.push_back("/images has " + std::to_string(chunks) + " chunks; its " + std::to_string(c.rows) +
                             " rows need " + std::to_string(wanted) + " (the file is damaged: missing chunks read as zeros)");
        }
      }
      if (full && problems.empty()) {
        // Every image read back, a block of chunks at a time: damaged chunks (and bad gzip data) show here.
        const std::uint64_t block = std::max<std::uint64_t>(1, (4u << 20) / (f_->chunk_rows * shape().bytes())) * f_->chunk_rows;
        std::vector<std::uint8_t> buffer;
        for (std::uint64_t row = 0; row < c.rows; row += block) {
          const std::uint64_t n = std::min(block, c.rows - row);
          buffer.resize(n * shape().bytes());
          f_->transfer(f_->images.get(), false, row, n, H5T_NATIVE_UINT8, buffer.data(),
                       "rows " + std::to_string(row) + " to " + std::to_string(row + n - 1) + " of /images");
        }
      }
    } catch (const Error& e) {
      problems.push_back(e.what());
    }
    return problems;
  }

  void begin() override {
    if (undo_.active()) return;
    // The file's one transaction: claimed under the mutex, waited for without it (the other may commit).
    const bool claimed = wait_for([&] {
      const Lock lock(hdf5_mutex());
      return !std::exchange(f_->writing, true);
    });
    if (!claimed) throw_writer_busy(table_, f_->path, "another connection in this process");
    const Lock lock(hdf5_mutex());
    try {
      make_writable(*f_, table_);
    } catch (...) {
      f_->writing = false;
      throw;
    }
    undo_.begin();
  }

  void sync() override {
    const Lock lock(hdf5_mutex());
    if (!undo_.active()) return;
    try {
      if (!undo_.empty() || appended_ > 0) commit_changes();
    } catch (...) {
      try {
        discard();
      } catch (...) {
        // The commit's own error is the one to report.
      }
      throw;
    }
    finish();
  }

  void rollback() override {
    const Lock lock(hdf5_mutex());
    if (!undo_.active()) return;
    discard();
  }

  void savepoint(int level) override { undo_.savepoint(level); }
  void release(int level) override { undo_.release(level); }
  void rollback_to(int level) override {
    const Lock lock(hdf5_mutex());
    std::optional<std::uint64_t> appended;  // the new-row count before the oldest undone change
    undo_.rollback_to(level, [&](const Undo& u) {
      undo_one(u);
      appended = u.appended;
    });
    if (appended) truncate_new_rows(*appended);
  }

 private:
  // How to undo one change. `appended` is the new-row count before the change: undoing back to a savepoint
  // also forgets the rows appended after it.
  struct Undo {
    enum Kind { kId, kLabel, kNewLabel } kind;
    std::int64_t id;
    std::uint64_t row;
    std::int64_t old_label;
    std::optional<std::optional<std::uint64_t>> old_overlay;  // outer empty: id was not in the overlay
    bool had_label;
    std::uint64_t appended;
  };

  std::uint64_t block_rows() const {
    // Whole chunks per H5Dwrite: about 1 MiB, at least one chunk.
    const std::uint64_t chunks = std::max<std::uint64_t>(1, (1u << 20) / (f_->chunk_rows * shape().bytes()));
    return chunks * f_->chunk_rows;
  }

  std::int64_t max_overlay() const {
    for (auto it = overlay_.rbegin(); it != overlay_.rend(); ++it) {
      if (it->second) return it->first;
    }
    return -1;
  }

  void remember_id(std::int64_t id) {
    const auto o = overlay_.find(id);
    undo_.push(Undo{Undo::kId, id, 0, 0,
                    o == overlay_.end() ? std::nullopt : std::optional<std::optional<std::uint64_t>>(o->second), false,
                    appended_});
  }

  void undo_one(const Undo& u) {
    switch (u.kind) {
      case Undo::kId:
        if (u.old_overlay) {
          overlay_[u.id] = *u.old_overlay;
        } else {
          overlay_.erase(u.id);
        }
        break;
      case Undo::kLabel:
        if (u.had_label) {
          label_overlay_[u.row] = u.old_label;
        } else {
          label_overlay_.erase(u.row);
        }
        break;
      case Undo::kNewLabel: {
        const std::uint64_t rows = f_->committed->rows;
        if (u.row - rows < new_labels_.size()) new_labels_[u.row - rows] = u.old_label;
        break;
      }
    }
  }

  // Forgets new rows past `count` (they belong to undone changes).
  void truncate_new_rows(std::uint64_t count) {
    if (count >= appended_) return;
    appended_ = count;
    new_labels_.resize(count);
    if (count < flushed_) {
      // Part of a written block is undone: keep the rows still wanted in the buffer and rewrite them later.
      const std::uint64_t keep_from = count / block_rows() * block_rows();
      std::vector<std::uint8_t> kept((count - keep_from) * shape().bytes());
      if (!kept.empty()) {
        f_->transfer(f_->images.get(), false, f_->committed->rows + keep_from, count - keep_from, H5T_NATIVE_UINT8,
                     kept.data(), f_->where(table_) + ": reading back rows");
      }
      pending_ = std::move(kept);
      flushed_ = keep_from;
    } else {
      pending_.resize((count - flushed_) * shape().bytes());
    }
    ++generation_;
  }

  void flush_block() {
    const std::uint64_t n = pending_.size() / shape().bytes();
    if (n == 0) return;
    const std::string what = f_->where(table_) + ": writing " + std::to_string(n) + " images";
    // Counted from the start of the transaction: HDF5's chunk cache may not have written the earlier blocks yet.
    f_->ensure_space((flushed_ + n) * shape().bytes(), what);
    const std::uint64_t first = f_->committed->rows + flushed_;
    if (f_->extent(f_->images.get(), what) < first + n) {
      checked(H5Dset_extent(f_->images.get(), f_->dims(first + n).data()), what);
    }
    f_->transfer(f_->images.get(), true, first, n, H5T_NATIVE_UINT8, pending_.data(), what);
    flushed_ += n;
    pending_.clear();
    ++generation_;  // cursors holding a block of the buffer must re-read
  }

  // Writes the transaction and publishes the new committed state. New rows go past the committed count; changes
  // to committed rows are journaled first (hdf5_journal.hpp), so a crash at any point leaves old or new.
  void commit_changes() {
    const std::string what = f_->where(table_) + ": commit";
    flush_block();
    const Committed& old = *f_->committed;
    f_->ensure_space((old.rows + appended_) * 16, what);
    auto next = std::make_shared<Committed>();
    const std::uint64_t total = old.rows + appended_;
    next->rows = total;
    next->row_ids = old.row_ids;
    next->row_labels = old.row_labels;
    next->row_ids.resize(total, -1);
    next->row_labels.resize(total, 0);
    next->index = old.index;
    std::set<std::uint64_t> dirty;  // committed rows changed in place
    for (const auto& [row, label] : label_overlay_) {
      if (next->row_labels[row] == label) continue;
      next->row_labels[row] = label;
      dirty.insert(row);
    }
    for (std::uint64_t i = 0; i < appended_; ++i) next->row_labels[old.rows + i] = new_labels_[i];
    // New rows are live only if the overlay still points at them; committed rows of changed ids die.
    for (const auto& [id, row] : overlay_) {
      if (const auto c = old.index.find(id); c != old.index.end() && (!row || *row != c->second)) {
        next->row_ids[c->second] = -1;
        dirty.insert(c->second);
      }
      if (row && *row >= old.rows) next->row_ids[*row] = id;
      if (row) {
        next->index[id] = *row;
      } else {
        next->index.erase(id);
      }
    }
    Journal journal{old.rows, {}};
    for (const auto row : dirty) journal.entries.push_back({row, old.row_ids[row], old.row_labels[row]});
    if (!journal.entries.empty()) write_journal(f_->path, journal, what);
    if (total > old.rows) {
      const hsize_t n[1] = {total};
      checked(H5Dset_extent(f_->labels.get(), n), what);
      checked(H5Dset_extent(f_->ids.get(), n), what);
    }
    for (const auto row : dirty) {
      f_->transfer(f_->ids.get(), true, row, 1, H5T_NATIVE_INT64, next->row_ids.data() + row, what);
      f_->transfer(f_->labels.get(), true, row, 1, H5T_NATIVE_INT64, next->row_labels.data() + row, what);
    }
    if (total > old.rows) {
      f_->transfer(f_->ids.get(), true, old.rows, appended_, H5T_NATIVE_INT64, next->row_ids.data() + old.rows, what);
      f_->transfer(f_->labels.get(), true, old.rows, appended_, H5T_NATIVE_INT64, next->row_labels.data() + old.rows, what);
    }
    // The new rows reach the disk first; then the rows attribute, flushed and synced; then, if the commit
    // changed committed rows, the journal goes, and that is its commit point.
    f_->flush_and_sync(what);
    f_->write_rows_attribute(total, what);
    f_->flush_and_sync(what);
    if (!journal.entries.empty()) remove_journal(f_->path, what);
    f_->committed = std::move(next);
  }

  // Drops the transaction; rows written past the committed count are trimmed from the file.
  void discard() {
    const bool wrote = flushed_ > 0;
    finish();
    if (wrote) {
      const std::string what = f_->where(table_) + ": rollback";
      f_->set_rows(f_->committed->rows, what);
      f_->flush_and_sync(what);
    }
  }

  void finish() {
    f_->writing = false;
    undo_.end();
    overlay_.clear();
    label_overlay_.clear();
    new_labels_.clear();
    pending_.clear();
    appended_ = 0;
    flushed_ = 0;
    ++generation_;
  }

  const std::string table_;
  const std::shared_ptr<H5File> f_;
  UndoLog<Undo> undo_;
  std::map<std::int64_t, std::optional<std::uint64_t>> overlay_;  // id -> new row, or deleted
  std::map<std::uint64_t, std::int64_t> label_overlay_;            // committed row -> new label
  std::vector<std::int64_t> new_labels_;                           // per new row
  std::vector<std::uint8_t> pending_;                              // new rows not yet written
  std::uint64_t appended_ = 0;                                     // new rows
  std::uint64_t flushed_ = 0;                                      // new rows written to the file
  std::uint64_t generation_ = 0;
};

Hdf5Cursor::Hdf5Cursor(Hdf5Store& store, IdRange range, std::vector<std::int64_t> ids, bool by_ids)
    : store_(store), snapshot_(store.snapshot()), walk_(range, std::move(ids), by_ids) {
  next();
}

void Hdf5Cursor::next() {
  const Lock lock(hdf5_mutex());
  at_end_ = !walk_.step([&](std::int64_t id) { return store_.row_of(*snapshot_, id); },
                        [&](std::int64_t from) { return store_.first_from(*snapshot_, from); });
}

std::int64_t Hdf5Cursor::label() {
  const Lock lock(hdf5_mutex());
  return store_.label_at(*snapshot_, walk_.value());
}

std::span<const std::uint8_t> Hdf5Cursor::pixels() {
  const Lock lock(hdf5_mutex());
  const std::uint64_t row = walk_.value();
  const std::size_t bytes = store_.shape().bytes();
  if (const std::uint8_t* p = store_.buffered(row)) return {p, bytes};
  H5File& f = store_.file();
  const std::string what = f.where(store_.table()) + ": reading id " + std::to_string(walk_.id());
  if (walk_.by_ids()) {
    // A point read: one row through the chunk cache.
    single_.resize(bytes);
    f.transfer(f.images.get(), false, row, 1, H5T_NATIVE_UINT8, single_.data(), what);
    return single_;
  }
  if (row < block_first_ || row >= block_first_ + block_rows_ || block_generation_ != store_.generation()) {
    // A scan: a block of about 4 MiB of whole chunks per H5Dread, reused across blocks. Rows past the file's
    // written rows are not read (they are still in the writer's buffer).
    const std::uint64_t chunk = f.chunk_rows;
    const std::uint64_t rows_per_block = std::max<std::uint64_t>(1, (4u << 20) / (chunk * bytes)) * chunk;
    block_first_ = row / chunk * chunk;
    block_rows_ = std::min(rows_per_block, std::max(store_.rows_in_file(), snapshot_->rows) - block_first_);
    block_.resize(block_rows_ * bytes);
    block_generation_ = store_.generation();
    f.transfer(f.images.get(), false, block_first_, block_rows_, H5T_NATIVE_UINT8, block_.data(), what);
  }
  return {block_.data() + (row - block_first_) * bytes, bytes};
}

}  // namespace

std::unique_ptr<Store> open_hdf5_store(const std::string& table, const std::vector<std::string>& args, OpenMode mode) {
  const Args parsed(table, {"path", "shape", "compression", "chunk"}, args);
  std::optional<Shape> shape;
  if (const auto text = parsed.get("shape")) shape = parse_shape(*text, "table " + table + ": shape");
  const Compression compression = parse_compression(table, parsed.get("compression").value_or("none"));
  const auto chunk = static_cast<std::uint64_t>(parsed.integer("chunk", 1, 1 << 20, 0));
  return std::make_unique<Hdf5Store>(table, open_file(table, parsed.require("path"), shape, compression, chunk, mode));
}

}  // namespace imgstore
