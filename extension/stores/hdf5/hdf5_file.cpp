#include "hdf5_file.hpp"

#include <filesystem>

#include <fcntl.h>
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
  std::string out(size + 1, '\0');  // room for the terminator: a NULLPAD string (h5py's) may fill all `size`
  const Hid memtype(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(memtype.get(), size + 1);
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
  {
    // /commit: fixed size, its one chunk allocated at once, so writing it changes no metadata.
    const hsize_t two[1] = {2};
    const Hid space = checked(H5Screate_simple(1, two, nullptr), H5Sclose, what);
    const Hid dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, what);
    checked(H5Pset_chunk(dcpl.get(), 1, two), what);
    checked(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), what);
    f.commit = checked(H5Dcreate2(f.file.get(), kCommit, H5T_STD_U64LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                       H5Dclose, what);
    f.write_commit(0, 0, what);
  }
  write_string_attribute(f.file.get(), kFormatAttribute, kFormat, what);
  write_string_attribute(f.file.get(), kShapeAttribute, f.shape.str(), what);
  f.version = 2;
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

// How a file is opened. Version 1: read-only or read-write under HDF5's whole-file lock. Version 2: SWMR, the
// readers without HDF5's file lock (so that they never keep the writer out), the writer with it (so that a
// reader that takes the lock, such as h5py without swmr=True, keeps it out instead of reading a torn file).
// probe: SWMR read with the lock, to learn the version (a version 1 writer's lock keeps it out, as before).
enum class Access { v1_read, v1_write, probe, swmr_read, swmr_write };

Hid file_access(Access access) {
  Hid fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
  if (access == Access::swmr_write) {
    checked(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
  }
  if (access == Access::swmr_read) checked(H5Pset_file_locking(fapl.get(), 0, 1), "H5Pset_file_locking");
  return fapl;
}

unsigned file_flags(Access access) {
  switch (access) {
    case Access::v1_read: return H5F_ACC_RDONLY;
    case Access::v1_write: return H5F_ACC_RDWR;
    case Access::probe:
    case Access::swmr_read: return H5F_ACC_RDONLY | H5F_ACC_SWMR_READ;
    case Access::swmr_write: return H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE;
  }
  return H5F_ACC_RDONLY;
}

bool writes(Access access) { return access == Access::v1_write || access == Access::swmr_write; }

// A version 2 writer killed while it had the file open leaves the superblock's "open for write" flags set,
// and HDF5 then refuses every writer ("file is already open for write/SWMR write"). Only called while holding
// the writer lock, so no writer is alive: the flags are cleared as h5clear -s does (the library's own file
// access property "clear_status_flags", which h5clear uses).
bool clear_status_flags(const std::string& path) {
  const Hid fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  hbool_t clear = 1;
  if (!fapl || H5Pexist(fapl.get(), "clear_status_flags") <= 0 || H5Pset(fapl.get(), "clear_status_flags", &clear) < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, fapl.get());
  if (file < 0) {
    H5Eclear2(H5E_DEFAULT);
    return false;
  }
  H5Fclose(file);
  return true;
}

// Opens the file and its datasets, checking their types, ranks and the stored shape.
void open_handles(H5File& f, const std::string& table, Access access, const std::optional<Shape>& wanted) {
  const std::string what = f.where(table);
  const bool write = writes(access);
  const Hid fapl = file_access(access);  // closed after the error stack is read (any HDF5 call clears it)
  hid_t file = H5Fopen(f.path.c_str(), file_flags(access), fapl.get());
  if (file < 0) {
    ErrorStack stack = error_stack();
    if (access == Access::swmr_write && stack.text.find("already open for write") != std::string::npos &&
        clear_status_flags(f.path)) {
      file = H5Fopen(f.path.c_str(), file_flags(access), fapl.get());
      if (file < 0) stack = error_stack();
    }
    if (file < 0 && stack.locked) {
      throw Error("table " + table + ": '" + f.path + "' is " +
                      (access == Access::swmr_write ? "open in another process that locks the file (an HDF5 reader "
                                                      "without SWMR, e.g. h5py without swmr=True, locking=False)"
                       : write                      ? "open in another process"
                                                    : "being written by another process") +
                      " (HDF5 locks the whole file)",
                  ErrorKind::busy);
    }
    if (file < 0) {
      throw Error("table " + table + ": cannot open '" + f.path + "'" + (write ? " for writing" : "") + " (" + stack.text +
                      ")",
                  ErrorKind::cantopen);
    }
  }
  f.file = Hid(file, H5Fclose);
  // Files from other tools have no format attribute and are accepted if their datasets fit; ours must match.
  const std::string format = read_string_attribute(f.file.get(), kFormatAttribute);
  if (!format.empty() && format != kFormat && format != kFormatV1) {
    throw Error(what + " has format '" + format + "'; expected '" + kFormat + "' or '" + kFormatV1 + "'",
                ErrorKind::corrupt);
  }
  f.version = format == kFormat ? 2 : 1;
  f.images = open_dataset(f, table, kImages, 4, true);
  f.labels = open_dataset(f, table, kLabels, 1, false);
  f.ids = open_dataset(f, table, kIds, 1, false);
  if (f.version == 2) {
    if (H5Lexists(f.file.get(), kCommit, H5P_DEFAULT) <= 0) {
      H5Eclear2(H5E_DEFAULT);
      throw Error(what + " is an '" + kFormat + "' file without the dataset /commit (damaged file)", ErrorKind::corrupt);
    }
    const Hid dapl = checked(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose, what);
    checked(H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0), what);  // every read of /commit reads the file
    f.commit = checked(H5Dopen2(f.file.get(), kCommit, dapl.get()), H5Dclose, what + ": opening /commit");
    f.commit_address = HADDR_UNDEF;
    if (!write) {
      const Hid space = checked(H5Dget_space(f.commit.get()), H5Sclose, what);
      const Hid dcpl = checked(H5Dget_create_plist(f.commit.get()), H5Pclose, what);
      const Hid type = checked(H5Dget_type(f.commit.get()), H5Tclose, what);
      hsize_t offset[1] = {0};
      unsigned filters = 0;
      haddr_t address = HADDR_UNDEF;
      hsize_t size = 0;
      const bool plain = H5Pget_nfilters(dcpl.get()) == 0 && H5Tequal(type.get(), H5T_STD_U64LE) > 0 &&
                         H5Sget_simple_extent_npoints(space.get()) == 2;
      if (plain && H5Dget_chunk_info(f.commit.get(), space.get(), 0, offset, &filters, &address, &size) >= 0 && size == 16) {
        if (!f.commit_fd) f.commit_fd = Fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
        f.commit_address = address;
      }
      H5Eclear2(H5E_DEFAULT);  // otherwise /commit is read through HDF5, after an H5Drefresh
    }
  }
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
  f.writable = write;
}

// Opens a file read-only: probes its version, then reopens it as that version's readers do.
void open_reader(H5File& f, const std::string& table, const std::optional<Shape>& wanted) {
  open_handles(f, table, Access::probe, wanted);
  const int version = f.version;
  f.close();
  open_handles(f, table, version == 2 ? Access::swmr_read : Access::v1_read, wanted);
}

// Reads rows [0, rows) of /ids and /labels into a new committed state and indexes it.
std::shared_ptr<Committed> read_rows(H5File& f, const std::string& table, std::uint64_t rows, const char* says) {
  const std::string what = f.where(table);
  const std::uint64_t n_images = f.extent(f.images.get(), what);
  const std::uint64_t n_labels = f.extent(f.labels.get(), what);
  const std::uint64_t n_ids = f.extent(f.ids.get(), what);
  if (rows > n_images || rows > n_labels || rows > n_ids) {
    throw Error(what + " says (" + says + ") it has " + std::to_string(rows) + " rows but /images has " +
                    std::to_string(n_images) + ", /labels " + std::to_string(n_labels) + ", /ids " + std::to_string(n_ids) +
                    " (damaged file)",
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
  return c;
}

void build_index(Committed& c, const std::string& what) {
  for (std::uint64_t r = 0; r < c.rows; ++r) {
    const std::int64_t id = c.row_ids[r];
    if (id < 0) continue;
    if (const auto [it, fresh] = c.index.emplace(id, r); !fresh) {
      throw Error(what + ": /ids holds id " + std::to_string(id) + " twice (rows " + std::to_string(it->second) + " and " +
                      std::to_string(r) + ")",
                  ErrorKind::corrupt);
    }
  }
}

// Version 2: the seqlock read of hdf5_format.hpp. /commit, then /ids and /labels (each refreshed: SWMR readers
// see other processes' writes only after H5Drefresh, which also empties the dataset's chunk cache), then
// /commit again; an odd generation (a commit changing rows in place) or a changed one means read again.
// Unchanged since the last read: nothing to do. Inside this process's transaction nobody else writes.
void recover_abandoned(H5File& f, const std::string& table);

void load_committed_v2(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  const std::string what = f.where(table);
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + timeout;
  auto next_recovery = start + std::chrono::milliseconds(50);
  while (true) {
    const auto [generation, rows] = f.read_commit(what + ": reading /commit");
    if (generation % 2 == 0) {
      if (f.committed->generation == generation && f.committed->rows == rows) return;
      try {
        if (!f.writable) {
          // H5Drefresh evicts the dataset's cached metadata, but reopens it with the default chunk cache (1 MiB):
          // reopened with ours (dataset_access) afterwards, the datasets read as before.
          for (auto* d : {&f.ids, &f.labels, &f.images}) {
            checked(H5Drefresh(d->get()), what + ": H5Drefresh");
            d->reset();  // closed first: an open dataset opened again shares its chunk cache
            const Hid dapl = dataset_access();
            *d = checked(H5Dopen2(f.file.get(), d == &f.ids ? kIds : d == &f.labels ? kLabels : kImages, dapl.get()),
                         H5Dclose, what + ": reopening a dataset");
          }
        }
        auto c = read_rows(f, table, rows, "/commit");
        if (f.writable || f.read_commit(what + ": reading /commit").first == generation) {
          c->generation = generation;
          build_index(*c, what);
          f.committed = std::move(c);
          return;
        }
      } catch (const Error&) {
        // A read that raced a commit may fail; only one that did not race is an error.
        if (f.writable || f.read_commit(what + ": reading /commit").first == generation) throw;
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error("table " + table + ": '" + f.path + "' has a commit being applied by another process (generation " +
                      std::to_string(generation) + "); waited " + std::to_string(timeout.count()) +
                      " ms, try again after it commits",
                  ErrorKind::busy);
    }
    if (!f.writable && generation % 2 == 1 && std::chrono::steady_clock::now() > next_recovery) {
      // Odd for 50 ms: if the writer lock is free, its writer died mid-commit; recover instead of waiting.
      recover_abandoned(f, table);
      next_recovery = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
}

// Reads the committed state (version 1: the rows attribute, /ids, /labels) and publishes it. Rows past the
// committed count, left by a transaction that did not commit, are ignored; the next writer trims them.
void load_committed(H5File& f, const std::string& table, std::chrono::milliseconds timeout = kBusyTimeout) {
  if (f.version == 2) {
    load_committed_v2(f, table, timeout);
    return;
  }
  const std::string what = f.where(table);
  std::uint64_t rows = 0;
  if (H5Aexists(f.file.get(), kRowsAttribute) > 0) {
    const Hid attr = checked(H5Aopen(f.file.get(), kRowsAttribute, H5P_DEFAULT), H5Aclose, what);
    checked(H5Aread(attr.get(), H5T_NATIVE_UINT64, &rows), what + ": reading the rows attribute");
  } else {
    rows = f.extent(f.ids.get(), what);  // written by another tool: every row counts
  }
  auto c = read_rows(f, table, rows, "the rows attribute");
  build_index(*c, what);
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
void recover_journal(H5File& f, const std::string& table, const std::optional<std::optional<Journal>>& journal);

// Version 2 (the file open for SWMR writing, the writer lock held). A commit that changes rows in place makes
// /commit's generation odd (synced) before it writes its journal, and even again, with the new row count, as
// its commit point; then it removes the journal. So after a crash: a complete journal with an odd generation
// is rolled back; with an even one the commit had finished and the journal is only removed; an odd generation
// without a complete journal changed nothing in place yet. Either way the generation ends even and new.
void recover_v2(H5File& f, const std::string& table) {
  const std::string what = f.where(table) + ": recovering from an interrupted commit";
  const auto journal = read_journal(f.path, f.where(table));
  const auto [generation, rows] = f.read_commit(what);
  if (generation % 2 == 1) {
    std::uint64_t back_to = rows;
    if (journal && *journal) {
      for (const auto& e : (*journal)->entries) {
        std::int64_t id = e.id;
        std::int64_t label = e.label;
        f.transfer(f.ids.get(), true, e.row, 1, H5T_NATIVE_INT64, &id, what);
        f.transfer(f.labels.get(), true, e.row, 1, H5T_NATIVE_INT64, &label, what);
      }
      back_to = (*journal)->rows;
      f.set_rows(back_to, what);
      f.flush_and_sync(what);
    }
    f.write_commit(generation + 1, back_to, what);
    f.flush_and_sync(what);
  }
  if (journal) remove_journal(f.path, what);
}

void recover_journal(H5File& f, const std::string& table, const std::optional<std::optional<Journal>>& journal) {
  if (f.version == 2) {
    recover_v2(f, table);
    return;
  }
  if (!journal) return;
  if (*journal) {
    roll_back_journal(f, table, **journal);
  } else {
    remove_journal(f.path, f.where(table));
  }
}

// Version 2: takes the writer lock, waiting up to `timeout`.
bool lock_writer(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (!f.writer_lock) f.writer_lock = open_or_throw(f.path, O_RDWR | O_CLOEXEC, f.where(table) + ": the writer lock");
  return wait_for([&] { return try_ofd_lock(f.writer_lock.get(), F_WRLCK, kWriterLockByte); }, timeout);
}

void unlock_writer(H5File& f) noexcept {
  if (!f.writer_lock) return;
  try {
    try_ofd_lock(f.writer_lock.get(), F_UNLCK, kWriterLockByte);
  } catch (...) {
    f.writer_lock = Fd();  // closing the descriptor releases its lock
  }
}

// Version 2, opened read-only: a journal or an odd generation left by a writer that died is recovered now,
// if the writer lock is free (with a live writer both are normal: the seqlock read waits for its commit).
void recover_abandoned(H5File& f, const std::string& table) {
  const bool journal = ::access(journal_path(f.path).c_str(), F_OK) == 0;
  if (!journal && f.read_commit(f.where(table)).first % 2 == 0) return;
  if (::access(f.path.c_str(), W_OK) != 0) return;  // a read-only store: readers wait, then SQLITE_BUSY
  if (!lock_writer(f, table, std::chrono::milliseconds(0))) return;
  try {
    f.close();
    open_handles(f, table, Access::swmr_write, f.shape);
    recover_v2(f, table);
    f.close();
    open_handles(f, table, Access::swmr_read, f.shape);
  } catch (...) {
    unlock_writer(f);
    throw;
  }
  unlock_writer(f);
}

// Opens an existing store: read-only, unless a journal says a commit was interrupted, which is rolled back
// first (as SQLite rolls back a hot journal, even for a reader).
void open_existing_once(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                        std::chrono::milliseconds timeout) {
  open_reader(f, table, wanted);
  if (f.version == 2) {
    if (mode != OpenMode::inspect) recover_abandoned(f, table);
    load_committed(f, table, timeout);
    return;
  }
  if (mode == OpenMode::inspect) {  // as it is: check() reports a journal, imgstore_repair rolls it back
    load_committed(f, table);
    return;
  }
  const auto journal = read_journal(f.path, f.where(table));
  if (journal && *journal) {
    f.close();
    open_handles(f, table, Access::v1_write, wanted);
  }
  recover_journal(f, table, journal);
  load_committed(f, table);
}

// While another process writes a version 1 file, HDF5's lock keeps readers out too: wait for it, up to `timeout`.
void open_existing(H5File& f, const std::string& table, const std::optional<Shape>& wanted, OpenMode mode,
                   std::chrono::milliseconds timeout) {
  std::optional<Error> busy;
  const bool opened = wait_for([&] {
    try {
      open_existing_once(f, table, wanted, mode, timeout);
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

std::optional<std::pair<std::int64_t, std::int64_t>> file_stamp(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::pair{static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                   static_cast<std::int64_t>(st.st_size)};
}

// Opens the file for `access`, waiting up to `timeout` while another process holds HDF5's lock on it.
bool open_waiting(H5File& f, const std::string& table, Access access, std::chrono::milliseconds timeout) {
  return wait_for([&] {
    try {
      open_handles(f, table, access, f.shape);
      return true;
    } catch (const Error& e) {
      f.close();
      if (e.kind() != ErrorKind::busy) throw;
      return false;
    }
  }, timeout);
}

Access read_access(const H5File& f) { return f.version == 2 ? Access::swmr_read : Access::v1_read; }

// Version 2: the writer lock (other writers wait for it, readers never), then the file for SWMR writing.
void make_writable_v2(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (!lock_writer(f, table, timeout)) throw_writer_busy(table, f.path, "another process", timeout);
  f.close();
  try {
    if (!open_waiting(f, table, Access::swmr_write, timeout)) {
      throw Error("table " + table + ": '" + f.path + "' is open in another process that locks the file (an HDF5 "
                  "reader without SWMR, e.g. h5py without swmr=True, locking=False); waited " +
                  std::to_string(timeout.count()) + " ms, try again when it has closed the file",
                  ErrorKind::busy);
    }
    recover_v2(f, table);
    load_committed(f, table, timeout);  // read again only if another process committed since
  } catch (const Error&) {
    f.close();
    unlock_writer(f);
    open_handles(f, table, Access::swmr_read, f.shape);  // keep serving reads
    throw;
  }
}

}  // namespace

// Reopens the file read-write for a transaction's first write, and trims rows an unfinished transaction left.
// Between closing and reopening, another process may have written (or crashed writing): so its journal is
// rolled back and the committed state read again, as at open.
void make_writable(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.writable) return;
  require_writable(table, f.path);
  const std::string dir = std::filesystem::path(f.path).parent_path().string();
  require_writable(table, dir.empty() ? "." : dir);  // the journal is made beside the file
  if (f.version == 2) {
    make_writable_v2(f, table, timeout);
  } else {
    f.close();
    try {
      if (!open_waiting(f, table, Access::v1_write, timeout)) {
        throw Error("table " + table + ": '" + f.path + "' is open in another process (reading or writing it; HDF5 lets "
                    "a writer have a version 1 file only alone); waited " + std::to_string(timeout.count()) +
                    " ms, try again when the other process has closed it",
                    ErrorKind::busy);
      }
      const auto journal = read_journal(f.path, f.where(table));
      const bool unchanged = !journal && f.left_as && f.left_as == file_stamp(f.path);
      recover_journal(f, table, journal);
      if (!unchanged) load_committed(f, table);  // another process may have committed since
    } catch (const Error&) {
      f.close();
      open_handles(f, table, Access::v1_read, f.shape);  // keep serving reads
      throw;
    }
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
  unlock_writer(f);
  f.left_as = file_stamp(f.path);
  try {
    open_handles(f, table, read_access(f), f.shape);
  } catch (...) {
    f.close();  // another process was quicker: ensure_open reopens it when this process reads again
  }
}

void ensure_open(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.file) return;
  if (!open_waiting(f, table, read_access(f), timeout)) {
    throw Error("table " + table + ": '" + f.path + "' is being written by another process (HDF5 locks the whole file); "
                "waited " + std::to_string(timeout.count()) + " ms, try again after it commits",
                ErrorKind::busy);
  }
}

void refresh_committed(H5File& f, const std::string& table, std::chrono::milliseconds timeout) {
  if (f.version != 2 || f.writing || f.writable) return;
  ensure_open(f, table, timeout);
  load_committed(f, table, timeout);
}

bool writer_active(const H5File& f) {
  const Fd fd(::open(f.path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return false;
  try {
    if (!try_ofd_lock(fd.get(), F_WRLCK, kWriterLockByte)) return true;
    try_ofd_lock(fd.get(), F_UNLCK, kWriterLockByte);
  } catch (...) {
  }
  return false;
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
    // The latest file format (superblock 3, new chunk indexes): what SWMR needs (hdf5_format.hpp).
    const Hid fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
    checked(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
    f->file = checked(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose,
                      "table " + table + ": cannot create '" + path + "'");
    f->writable = true;
    create_layout(*f, table, compression, f->chunk_rows);
    // Made; now a reader like any other (SWMR readers cannot open a file open for plain writing).
    make_readonly(*f, table);
    ensure_open(*f, table, timeout);
    load_committed(*f, table, timeout);
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
