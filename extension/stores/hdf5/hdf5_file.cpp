#include "hdf5_file.hpp"

#include <filesystem>

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "busy.hpp"
#include "file_registry.hpp"
#include "hdf5_journal.hpp"
#include "posix_file.hpp"

namespace imgstore::hdf5 {

std::recursive_mutex& hdf5_mutex() {
  static std::recursive_mutex m;
  return m;
}

using Lock = std::lock_guard<std::recursive_mutex>;

// HDF5's error stack: the descriptions as one line, innermost last, and whether a file lock was refused
// (H5E_CANTLOCKFILE: another process has the file open).
struct ErrorStack {
  std::string text;
  bool locked = false;
};

ErrorStack error_stack() {
  ErrorStack stack;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) noexcept -> herr_t {
        // A C callback: nothing may be thrown through HDF5's frames. Out of memory ends the walk early.
        try {
          auto& s = *static_cast<ErrorStack*>(out);
          if (e->min_num == H5E_CANTLOCKFILE) s.locked = true;
          if (e->desc != nullptr && *e->desc != '\0') {
            if (!s.text.empty()) s.text += "; ";
            s.text += e->desc;
          }
          return 0;
        } catch (...) {
          return -1;
        }
      },
      &stack);
  H5Eclear2(H5E_DEFAULT);
  if (stack.text.empty()) stack.text = "unknown HDF5 error";
  return stack;
}

[[noreturn]] void fail(const std::string& what) {
  const ErrorStack stack = error_stack();
  ErrorKind kind = ErrorKind::generic;
  // HDF5 has no error code for a full disk, only errno in the text of its write error.
  if (stack.text.find("errno = 28") != std::string::npos || stack.text.find("No space left") != std::string::npos) {
    kind = ErrorKind::full;
  }
  if (stack.locked) kind = ErrorKind::busy;
  throw Error(what + " (" + stack.text + ")", kind);
}

Hid checked(hid_t id, herr_t (*close)(hid_t), const std::string& what) {
  if (id < 0) fail(what);
  return Hid(id, close);
}

void checked(herr_t rc, const std::string& what) {
  if (rc < 0) fail(what);
}

Compression parse_compression(const std::string& table, const std::string& text) {
  if (text == "none" || text.empty()) return {};
  if (text.rfind("gzip", 0) == 0) {
    if (text == "gzip") return {4};
    if (text.size() == 6 && text[4] == ':' && text[5] >= '1' && text[5] <= '9') return {text[5] - '0'};
  }
  throw Error("table " + table + ": compression '" + text + "' is not valid; expected 'none', 'gzip' or 'gzip:1' to 'gzip:9'",
              ErrorKind::mismatch);
}



namespace {

void silence_hdf5() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

FileRegistry<H5File>& registry() {
  static FileRegistry<H5File> r;
  return r;
}

Hid dataset_access() {
  Hid dapl = checked(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose, "H5Pcreate");
  checked(H5Pset_chunk_cache(dapl.get(), kChunkCache.slots, kChunkCache.bytes, kChunkCache.w0), "H5Pset_chunk_cache");
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
  const hsize_t row_chunk[1] = {row_chunk_rows(chunk)};
  f.images = make(kImages, H5T_STD_U8LE, 4, image_chunk, true);
  f.labels = make(kLabels, H5T_STD_I64LE, 1, row_chunk, false);
  f.ids = make(kIds, H5T_STD_I64LE, 1, row_chunk, false);
  write_string_attribute(f.file.get(), kFormatAttribute, kFormat, what);
  write_string_attribute(f.file.get(), kShapeAttribute, f.shape.str(), what);
  const Hid space = checked(H5Screate(H5S_SCALAR), H5Sclose, what);
  const Hid attr = checked(H5Acreate2(f.file.get(), kRowsAttribute, H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose, what);
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
  const hid_t file = H5Fopen(f.path.c_str(), flags, H5P_DEFAULT);
  if (file < 0) {
    const ErrorStack stack = error_stack();
    if (stack.locked) {
      throw Error("table " + table + ": '" + f.path + "' is " +
                      (flags == H5F_ACC_RDWR ? "open in another process" : "being written by another process") +
                      " (HDF5 locks the whole file)",
                  ErrorKind::busy);
    }
    throw Error("table " + table + ": cannot open '" + f.path + "'" + (flags == H5F_ACC_RDWR ? " for writing" : "") +
                    " (" + stack.text + ")",
                ErrorKind::cantopen);
  }
  f.file = Hid(file, H5Fclose);
  // Files from other tools have no format attribute and are accepted if their datasets fit; ours must match.
  const std::string format = read_string_attribute(f.file.get(), kFormatAttribute);
  if (!format.empty() && format != kFormat) {
    throw Error(what + " has format '" + format + "'; expected '" + kFormat + "'", ErrorKind::corrupt);
  }
  f.images = open_dataset(f, table, kImages, 4, true);
  f.labels = open_dataset(f, table, kLabels, 1, false);
  f.ids = open_dataset(f, table, kIds, 1, false);
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
  if (H5Aexists(f.file.get(), kRowsAttribute) > 0) {
    const Hid attr = checked(H5Aopen(f.file.get(), kRowsAttribute, H5P_DEFAULT), H5Aclose, what);
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

// Deals with the journal found beside the file, if any: a complete one is rolled back (the file must be open
// read-write); an incomplete one was never acted on (nothing changed in place before it was synced): removed.
void recover_journal(H5File& f, const std::string& table, const std::optional<std::optional<Journal>>& journal) {
  if (!journal) return;
  if (*journal) {
    roll_back_journal(f, table, **journal);
  } else {
    remove_journal(f.path, f.where(table));
  }
}

// Opens an existing store: read-only, unless a journal says a commit was interrupted, which is rolled back
// first (as SQLite rolls back a hot journal, even for a reader).
void open_existing_once(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode) {
  if (mode == OpenMode::inspect) {  // as it is: check() reports a journal, imgstore_repair rolls it back
    open_handles(f, table, H5F_ACC_RDONLY, wanted);
    load_committed(f, table);
    return;
  }
  const auto journal = read_journal(f.path, f.where(table));
  open_handles(f, table, journal && *journal ? H5F_ACC_RDWR : H5F_ACC_RDONLY, wanted);
  recover_journal(f, table, journal);
  load_committed(f, table);
}

// While another process writes the file, HDF5's lock keeps readers out too: wait for it, up to `timeout`.
void open_existing(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                   std::chrono::milliseconds timeout) {
  std::optional<Error> busy;
  const bool opened = wait_for([&] {
    try {
      open_existing_once(f, table, wanted, mode);
      return true;
    } catch (const Error& e) {
      f.close();
      if (e.kind() != ErrorKind::busy) throw;
      busy = e;
      return false;
    }
  }, timeout);
  if (!opened) {
    throw Error(std::string(busy->what()) + "; waited " + std::to_string(timeout.count()) + " ms, try again after it commits",
                ErrorKind::busy);
  }
}

}  // namespace

// Reopens the file read-write for a transaction's first write, and trims rows an unfinished transaction left.
// Between closing and reopening, another process may have written (or crashed writing): so its journal is
// rolled back and the committed state read again, as at open.
namespace {

std::optional<std::pair<std::int64_t, std::int64_t>> file_stamp(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::pair{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                   static_cast<std::int64_t>(st.st_size)};
}

// Opens the file with `flags`, waiting up to `timeout` while another process holds HDF5's lock on it.
bool open_waiting(H5File& f, const std::string& table, unsigned flags, std::chrono::milliseconds timeout) {
  return wait_for([&] {
    try {
      open_handles(f, table, flags, f.shape);
      return true;
    } catch (const Error& e) {
      f.close();
      if (e.kind() != ErrorKind::busy) throw;
      return false;
    }
  }, timeout);
}

}  // namespace

void make_writable(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.writable) return;
  require_writable(table, f.path);
  const std::string dir = std::filesystem::path(f.path).parent_path().string();
  require_writable(table, dir.empty() ? "." : dir);  // the journal is made beside the file
  f.close();
  try {
    if (!open_waiting(f, table, H5F_ACC_RDWR, timeout)) {
      throw Error("table " + table + ": '" + f.path + "' is open in another process (reading or writing it; HDF5 lets a "
                  "writer have the file only alone); waited " + std::to_string(timeout.count()) +
                  " ms, try again when the other process has closed it",
                  ErrorKind::busy);
    }
    const auto journal = read_journal(f.path, f.where(table));
    const bool unchanged = !journal && f.left_as && f.left_as == file_stamp(f.path);
    recover_journal(f, table, journal);
    if (!unchanged) load_committed(f, table);  // another process may have committed since
  } catch (const Error&) {
    f.close();
    open_handles(f, table, H5F_ACC_RDONLY, f.shape);  // keep serving reads
    throw;
  }
  const std::string what = f.where(table) + ": trimming rows of an unfinished transaction";
  const std::uint64_t rows = f.committed->rows;
  if (f.extent(f.images.get(), what) > rows || f.extent(f.labels.get(), what) > rows || f.extent(f.ids.get(), what) > rows) {
    f.set_rows(rows, what);
  }
}

void make_readonly(H5File& f, const std::string& table) noexcept {
  if (!f.writable) return;
  f.close();
  f.left_as = file_stamp(f.path);
  try {
    open_handles(f, table, H5F_ACC_RDONLY, f.shape);
  } catch (...) {
    f.close();  // another process was quicker: ensure_open reopens it when this process reads again
  }
}

void ensure_open(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.file) return;
  if (!open_waiting(f, table, H5F_ACC_RDONLY, timeout)) {
    throw Error("table " + table + ": '" + f.path + "' is being written by another process (HDF5 locks the whole file); "
                "waited " + std::to_string(timeout.count()) + " ms, try again after it commits",
                ErrorKind::busy);
  }
}


std::shared_ptr<H5File> open_file(const std::string& table, const std::string& path, const std::optional<Shape>& wanted,
                                  const Compression& compression, std::uint64_t chunk, OpenMode mode,
                                  std::chrono::milliseconds timeout) {
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
    f->chunk_rows = chunk > 0 ? chunk : default_chunk_rows(f->shape.bytes());
    f->file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose,
                      "table " + table + ": cannot create '" + path + "'");
    f->writable = true;
    create_layout(*f, table, compression, f->chunk_rows);
  } else {
    if (H5Fis_hdf5(path.c_str()) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw Error("table " + table + ": '" + path + "' is not an HDF5 file", ErrorKind::cantopen);
    }
    open_existing(*f, table, wanted, mode, timeout);
  }
  reg.add(path, table, f);
  return f;
}

}  // namespace imgstore::hdf5
