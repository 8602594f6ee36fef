// Opening the HDF5 file of an hdf5 store (H5File, hdf5_file.hpp): how each format version opens a file, the
// handles with the checks of their types, ranks and shape, HDF5's refusals as our errors, and a new file's
// layout.
#include "hdf5_open.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "posix_file.hpp"

namespace imgstore::hdf5 {

Compression parse_compression(const std::string& table, const std::string& text) {
  if (text == "none" || text.empty()) return {};
  if (text.rfind("gzip", 0) == 0) {
    if (text == "gzip") return {4};
    if (text.size() == 6 && text[4] == ':' && text[5] >= '1' && text[5] <= '9') return {text[5] - '0'};
  }
  throw Error("table " + table + ": compression '" + text + "' is not valid; expected 'none', 'gzip' or 'gzip:1' to 'gzip:9'",
              ErrorKind::mismatch);
}

Hid dataset_access(bool uncached) {
  Hid dapl = checked(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose, "H5Pcreate");
  checked(H5Pset_chunk_cache(dapl.get(), kChunkCache.slots, uncached ? 0 : kChunkCache.bytes, kChunkCache.w0),
          "H5Pset_chunk_cache");
  return dapl;
}

Hid open_with_cache(hid_t file, const char* name, const std::string& what) {
  const Hid dapl = dataset_access();
  Hid dset = checked(H5Dopen2(file, name, dapl.get()), H5Dclose, what);
  if (std::strcmp(name, kImages) != 0) return dset;
  const Hid dcpl = checked(H5Dget_create_plist(dset.get()), H5Pclose, what);
  if (H5Pget_nfilters(dcpl.get()) != 0) return dset;
  dset.reset();  // closed first: a dataset opened again shares its chunk cache
  const Hid uncached = dataset_access(true);
  return checked(H5Dopen2(file, name, uncached.get()), H5Dclose, what);
}

namespace {

// The attribute's text; empty when it is missing or not a string. Failing to look (damaged metadata) throws.
std::string read_string_attribute(hid_t obj, const char* name, const std::string& what) {
  const htri_t exists = H5Aexists(obj, name);
  if (exists < 0) fail(what + ": looking up the attribute " + name);
  if (exists == 0) return {};
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

// Whether the root group links `name` (H5Lexists); a failure to look (the group's metadata damaged) is an error
// of its own, not a missing dataset.
htri_t require_link(hid_t file, const std::string& what, const char* name) {
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  if (exists < 0) fail(what + ": looking up /" + name);
  return exists;
}

// The element type a dataset must have.
enum class Element { uint8, int64, uint64, uint32 };

// What a dataset must be: its element type, rank and (shape 'any') its datasets' description.
struct Wanted {
  Element element;
  int rank;
  const char* expected;  // for errors: "uint8 of rank 4 (N,H,W,C)"
};
constexpr Wanted kImages4{Element::uint8, 4, "uint8 of rank 4 (N,H,W,C)"};
constexpr Wanted kImagesRagged{Element::uint8, 1, "uint8 of rank 1 (every image's bytes, shape 'any')"};
constexpr Wanted kInt64Rows{Element::int64, 1, "int64 of rank 1 (N)"};
constexpr Wanted kUint64Rows{Element::uint64, 1, "uint64 of rank 1 (N)"};
constexpr Wanted kShapeRows{Element::uint32, 2, "uint32 of rank 2 (N,3)"};

// Opens /name and checks its type and rank; errors say what is missing or wrong.
Hid open_dataset(hid_t file, const std::string& what, const char* name, const Wanted& wanted, bool ragged = false) {
  const Element element = wanted.element;
  if (require_link(file, what, name) == 0) {
    throw Error(what + " is an HDF5 file without the dataset /" + name +
                    (ragged ? "; expected an imgstore store of shape 'any' (datasets /images, /offsets, /shapes, "
                              "/labels, /ids, /checksums)"
                            : "; expected an imgstore store (datasets /images, /labels, /ids" +
                                  (element == Element::uint64 ? std::string(", and /checksums in format 3)")
                                                              : std::string(")"))),
                ErrorKind::cantopen);
  }
  Hid dset = open_with_cache(file, name, what + ": opening /" + name);
  const Hid type = checked(H5Dget_type(dset.get()), H5Tclose, what);
  const Hid space = checked(H5Dget_space(dset.get()), H5Sclose, what);
  const bool integer = H5Tget_class(type.get()) == H5T_INTEGER;
  const std::size_t size = H5Tget_size(type.get());
  const bool is_signed = H5Tget_sign(type.get()) == H5T_SGN_2;
  const std::size_t want_size = element == Element::uint8 ? 1 : element == Element::uint32 ? 4 : 8;
  const bool type_ok = integer && size == want_size && is_signed == (element == Element::int64);
  if (!type_ok) {
    throw Error(what + ": dataset /" + name + " has the wrong type (" + (integer ? "" : "not ") + "integer of " +
                    std::to_string(size) + " bytes); expected " + wanted.expected,
                ErrorKind::mismatch);
  }
  if (H5Sget_simple_extent_ndims(space.get()) != wanted.rank) {
    throw Error(what + ": dataset /" + name + " has rank " + std::to_string(H5Sget_simple_extent_ndims(space.get())) +
                    "; expected " + wanted.expected,
                ErrorKind::mismatch);
  }
  if (element == Element::uint32) {
    hsize_t d[2] = {0, 0};
    H5Sget_simple_extent_dims(space.get(), d, nullptr);
    if (d[1] != 3) {
      throw Error(what + ": dataset /" + name + " has " + std::to_string(d[1]) + " columns; expected " + wanted.expected,
                  ErrorKind::mismatch);
    }
  }
  return dset;
}


// How often HDF5 reads a piece of metadata whose checksum fails before it gives up, when the file is open for
// SWMR. Its default, 100, sleeps 1 ns, 2 ns, 4 ns, ... between reads: a damaged file hung the process for
// good (2^99 ns). A reader racing the writer's metadata flush needs a few rereads at most, and our own retries
// (open_file_id, load_committed_v2) are bounded by the table's timeout: 20 reads, about 2 ms of sleeps.
constexpr unsigned kMetadataReadAttempts = 20;

Hid file_access(Access access) {
  Hid fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
  checked(H5Pset_metadata_read_attempts(fapl.get(), kMetadataReadAttempts), "H5Pset_metadata_read_attempts");
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
  // The dead writer recorded the file's end (EOA) in the superblock only when it last flushed that; it wrote
  // blocks past it since, and the metadata that points to them (SWMR readers ignore the EOA for that reason).
  // Closing the file cuts it to its EOA, which cut those blocks off under the metadata still naming them: the
  // next writer then failed to trim the dead one's rows ("addr overflow"). So the EOA becomes the file's length
  // first, as h5clear --increment=0 does. The dead transaction's rows are trimmed later; the space they took
  // stays in the file until imgstore_compact (HDF5 keeps no free-space list across closes).
  const bool reached = H5Fincrement_filesize(file, 0) >= 0;
  if (!reached) H5Eclear2(H5E_DEFAULT);  // (never seen: the close below then cuts as before; the open fails)
  H5Fclose(file);
  return reached;
}

// The format version of the open file.
int format_version(hid_t file, const std::string& what) {
  // Files from other tools have no format attribute and are accepted if their datasets fit; ours must match.
  const std::string format = read_string_attribute(file, kFormatAttribute, what);
  if (format == kFormat) return 3;
  if (format == kFormatV2) return 2;
  if (!format.empty() && format != kFormatV1) {
    throw Error(what + " has format '" + format + "'; expected '" + kFormat + "', '" + kFormatV2 + "' or '" +
                    kFormatV1 + "' (a newer imgstore made it?)",
                ErrorKind::corrupt);
  }
  return 1;
}

}  // namespace

// Why an open failed, as our error. A reader can meet a writer's metadata halfway: the superblock's grown end
// recorded before the data there is written (HDF5: "truncated file"), metadata being rewritten (a checksum
// that fails every reread): busy while the writer lock is held, so the open is retried up to `timeout`.
// Without a writer the file itself is damaged, or, for the end, cut short, as a power loss after a commit that
// grew it can leave it: imgstore_repair (restore_recorded_end) extends it again.
[[noreturn]] void H5File::throw_open_error(const std::string& table, Access access, const ErrorStack& stack) const {
  const bool write = writes(access);
  const bool truncated = stack.text.find("truncated file") != std::string::npos;
  const std::string at = "table " + table + ": '" + path_ + "'";
  if ((truncated || stack.checksum()) && !write && writer_active()) {
    throw Error(at + " is being written by another process, or is damaged (" + stack.text + ")", ErrorKind::busy);
  }
  if (truncated) {
    const auto end = read_superblock_head(path_).end;
    std::error_code ec;
    const auto size = std::filesystem::file_size(path_, ec);
    if (!ec && end && size >= *end) {
      // It reaches its recorded end now: a writer grew it between HDF5's look and ours, and has ended its
      // transaction since (writer_active above said no). Not cut short: the open is tried again.
      throw Error(at + " was being extended by another process (" + stack.text + ")", ErrorKind::busy);
    }
    throw Error(at + " is shorter (" + (ec ? std::string("?") : std::to_string(size)) + " bytes) than the end its " +
                    "superblock records (" + (end ? std::to_string(*end) : std::string("?")) + "): cut short, as a " +
                    "power loss after a commit that grew it leaves it" +
                    (end ? "; SELECT imgstore_repair('hdf5', '" + path_ + "') restores its last commit" : std::string()),
                ErrorKind::corrupt);
  }
  if (stack.checksum()) throw Error(at + " is damaged (" + stack.text + ")", ErrorKind::corrupt);
  if (stack.locked) {
    throw Error(at + " is " +
                    (access == Access::swmr_write ? "open in another process that locks the file (an HDF5 reader "
                                                    "without SWMR, e.g. h5py without swmr=True, locking=False)"
                     : write                      ? "open in another process"
                                                  : "being written by another process") +
                    " (HDF5 locks the whole file)",
                ErrorKind::busy);
  }
  throw Error("table " + table + ": cannot open '" + path_ + "'" + (write ? " for writing" : "") + " (" + stack.text + ")",
              ErrorKind::cantopen);
}

// Opens the file itself for `access` (errors: throw_open_error); a version 2 writer first clears the flags a
// killed writer left (clear_status_flags).
Hid H5File::open_file_id(const std::string& table, Access access) const {
  const Hid fapl = file_access(access);  // closed after the error stack is read (any HDF5 call clears it)
  hid_t file = H5Fopen(file_name().c_str(), file_flags(access), fapl.get());
  if (file < 0) {
    ErrorStack stack = error_stack();
    if (access == Access::swmr_write && stack.text.find("already open for write") != std::string::npos &&
        clear_status_flags(file_name())) {
      file = H5Fopen(file_name().c_str(), file_flags(access), fapl.get());
      if (file < 0) stack = error_stack();
    }
    if (file < 0) throw_open_error(table, access, stack);
  }
  return Hid(file, H5Fclose);
}

// A version 2 reader: the file address of /commit's one chunk, for H5File::read_commit's direct reads, when
// the chunk is as this code creates it (unfiltered, two u64).
void H5File::find_commit_address(const std::string& what) {
  const Hid space = checked(H5Dget_space(commit_.get()), H5Sclose, what);
  const Hid dcpl = checked(H5Dget_create_plist(commit_.get()), H5Pclose, what);
  const Hid type = checked(H5Dget_type(commit_.get()), H5Tclose, what);
  hsize_t offset[1] = {0};
  unsigned filters = 0;
  haddr_t address = HADDR_UNDEF;
  hsize_t size = 0;
  const bool plain = H5Pget_nfilters(dcpl.get()) == 0 && H5Tequal(type.get(), H5T_STD_U64LE) > 0 &&
                     H5Sget_simple_extent_npoints(space.get()) == 2;
  if (plain && H5Dget_chunk_info(commit_.get(), space.get(), 0, offset, &filters, &address, &size) >= 0 && size == 16) {
    if (!commit_fd_) commit_fd_ = Fd(::open(file_name().c_str(), O_RDONLY | O_CLOEXEC));
    commit_address_ = address;
  }
  H5Eclear2(H5E_DEFAULT);  // otherwise /commit is read through HDF5, after an H5Drefresh
}

// Version 2: opens /commit (uncached), and for a reader finds its direct-read address.
void H5File::open_commit(const std::string& table, bool write) {
  const std::string what = where(table);
  if (require_link(file_.get(), what, kCommit) == 0) {
    throw Error(what + " is an '" + kFormat + "' file without the dataset /commit (damaged file)", ErrorKind::corrupt);
  }
  const Hid dapl = checked(H5Pcreate(H5P_DATASET_ACCESS), H5Pclose, what);
  checked(H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0), what);  // every read of /commit reads the file
  commit_ = checked(H5Dopen2(file_.get(), kCommit, dapl.get()), H5Dclose, what + ": opening /commit");
  commit_address_ = HADDR_UNDEF;
  if (!write) find_commit_address(what);
}

// The stored shape (checked against `wanted`) and the rows in a chunk of /images.
void H5File::read_shape(const std::string& table, const std::optional<Shape>& wanted) {
  const std::string what = where(table);
  hsize_t d[4] = {0, 0, 0, 0};
  {
    const Hid space = checked(H5Dget_space(images_.get()), H5Sclose, what);
    H5Sget_simple_extent_dims(space.get(), d, nullptr);
  }
  // A 1-D /images (with /offsets and /shapes, open_handles) is a store of shape 'any'.
  shape_ = offsets_ ? Shape::any_size() : make_shape(d[1], d[2], d[3], what + ": /images");
  if (wanted && *wanted != shape_) throw shape_mismatch(table, *wanted, path_, shape_);
  const Hid dcpl = checked(H5Dget_create_plist(images_.get()), H5Pclose, what);
  hsize_t chunk[4] = {1, 0, 0, 0};
  if (H5Pget_layout(dcpl.get()) == H5D_CHUNKED) H5Pget_chunk(dcpl.get(), offsets_ ? 1 : 4, chunk);
  chunk_rows_ = std::max<hsize_t>(chunk[0], 1);
  filters_ = std::max(H5Pget_nfilters(dcpl.get()), 0);
  deflate_ = 0;
  if (filters_ == 1) {
    unsigned flags = 0;
    unsigned level = 0;
    std::size_t n = 1;
    if (H5Pget_filter2(dcpl.get(), 0, &flags, &n, &level, 0, nullptr, nullptr) == H5Z_FILTER_DEFLATE && n >= 1) {
      deflate_ = static_cast<int>(std::clamp(level, 1u, 9u));
    }
    H5Eclear2(H5E_DEFAULT);
  }
}

// Opens the file and its datasets, checking their types, ranks and the stored shape.
void H5File::open_handles(const std::string& table, Access access, const std::optional<Shape>& wanted) {
  close();
  try {
    file_ = open_file_id(table, access);
    opener_ = OwnerProcess();
    const std::string what = where(table);
    remember_identity(what);
    version_ = format_version(file_.get(), what);
    const bool ragged = require_link(file_.get(), what, kOffsets) != 0;  // shape 'any' (hdf5_format.hpp)
    images_ = open_dataset(file_.get(), what, kImages, ragged ? kImagesRagged : kImages4, ragged);
    labels_ = open_dataset(file_.get(), what, kLabels, kInt64Rows, ragged);
    ids_ = open_dataset(file_.get(), what, kIds, kInt64Rows, ragged);
    if (checksummed()) checksums_ = open_dataset(file_.get(), what, kChecksums, kUint64Rows, ragged);
    if (ragged) {
      offsets_ = open_dataset(file_.get(), what, kOffsets, kUint64Rows, true);
      shapes_ = open_dataset(file_.get(), what, kShapes, kShapeRows, true);
    }
    if (swmr()) open_commit(table, writes(access));
    read_shape(table, wanted);
    writable_ = writes(access);
  } catch (...) {
    close();  // all the handles or none
    throw;
  }
}

SuperblockHead read_superblock_head(const std::string& path) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  std::uint8_t head[kSuperblockHead] = {};
  const ssize_t n = fd ? ::pread(fd.get(), head, sizeof head, 0) : -1;
  return parse_superblock_head(std::span(head, n > 0 ? static_cast<std::size_t>(n) : 0));
}

// Opens a file read-only as its version's readers do: the latest format (version 2) for SWMR reading without
// HDF5's lock, older ones under it; when the superblock does not say, a locked probe reads the format attribute.
void H5File::open_reader(const std::string& table, const std::optional<Shape>& wanted) {
  // Read without HDF5, so without taking its file lock (which, even for a moment, keeps a version 2 writer out).
  const int superblock = read_superblock_head(file_name()).version;
  if (superblock >= 3) {
    open_handles(table, Access::swmr_read, wanted);
    if (swmr()) return;
    close();  // the latest format, but not ours: read it as version 1, under HDF5's lock
  } else if (superblock < 0) {
    open_handles(table, Access::probe, wanted);
    const bool v2 = swmr();
    close();
    if (v2) return open_handles(table, Access::swmr_read, wanted);
  }
  open_handles(table, Access::v1_read, wanted);
}

void H5File::create(const std::string& table, const Shape& shape, const Compression& compression, std::uint64_t chunk) {
  shape_ = shape;
  chunk_rows_ = chunk > 0 ? chunk : shape_.any ? kAnyChunkBytes : default_chunk_rows(shape_.bytes());
  // The latest file format (superblock 3, new chunk indexes): what SWMR needs (hdf5_format.hpp).
  const Hid fapl = checked(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, "H5Pcreate");
  checked(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), "H5Pset_libver_bounds");
  file_ = checked(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose,
                  "table " + table + ": cannot create '" + path_ + "'");
  opener_ = OwnerProcess();
  writable_ = true;  // until open() makes it a reader like any other
  const std::string what = where(table) + ": creating the datasets";
  remember_identity(what);
  const auto make = [&](const char* name, hid_t type, int rank, const hsize_t* chunk_dims, bool compress) {
    std::vector<hsize_t> max(chunk_dims, chunk_dims + rank);
    std::vector<hsize_t> initial(chunk_dims, chunk_dims + rank);
    initial[0] = 0;
    max[0] = H5S_UNLIMITED;
    const Hid space = checked(H5Screate_simple(rank, initial.data(), max.data()), H5Sclose, what);
    const Hid dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, what);
    checked(H5Pset_chunk(dcpl.get(), rank, chunk_dims), what);
    if (compress && compression.gzip > 0) checked(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(compression.gzip)), what);
    const Hid dapl = dataset_access(compress && compression.gzip == 0);  // unfiltered /images: uncached
    return checked(H5Dcreate2(file_.get(), name, type, space.get(), H5P_DEFAULT, dcpl.get(), dapl.get()), H5Dclose, what);
  };
  const hsize_t image_chunk[4] = {chunk_rows_, shape_.height, shape_.width, shape_.channels};
  const hsize_t row_chunk[1] = {shape_.any ? kAnyRowChunk : row_chunk_rows(chunk_rows_)};
  images_ = make(kImages, H5T_STD_U8LE, shape_.any ? 1 : 4, image_chunk, true);  // 'any': 1-D, chunk_rows_ bytes
  labels_ = make(kLabels, H5T_STD_I64LE, 1, row_chunk, false);
  ids_ = make(kIds, H5T_STD_I64LE, 1, row_chunk, false);
  checksums_ = make(kChecksums, H5T_STD_U64LE, 1, row_chunk, false);
  if (shape_.any) {
    const hsize_t shape_chunk[2] = {kAnyRowChunk, 3};
    offsets_ = make(kOffsets, H5T_STD_U64LE, 1, row_chunk, false);
    shapes_ = make(kShapes, H5T_STD_U32LE, 2, shape_chunk, false);
  }
  {
    // /commit: fixed size, its one chunk allocated at once, so writing it changes no metadata.
    const hsize_t two[1] = {2};
    const Hid space = checked(H5Screate_simple(1, two, nullptr), H5Sclose, what);
    const Hid dcpl = checked(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, what);
    checked(H5Pset_chunk(dcpl.get(), 1, two), what);
    checked(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), what);
    commit_ = checked(H5Dcreate2(file_.get(), kCommit, H5T_STD_U64LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                      H5Dclose, what);
    write_commit(0, 0, what);
  }
  write_string_attribute(file_.get(), kFormatAttribute, kFormat, what);
  write_string_attribute(file_.get(), kShapeAttribute, shape_.str(), what);
  version_ = 3;
  filters_ = compression.gzip > 0 ? 1 : 0;
  deflate_ = compression.gzip;
  flush_and_sync(what);
}

}  // namespace imgstore::hdf5
