// Opening damaged store files: the input (seeded with real LMDB and HDF5 stores, then truncated and
// flipped by the fuzzer) is written as a store file and opened, scanned and checked. The first byte picks
// the backend (bit 0: hdf5) and, for lmdb, the format (bit 1: a format-2 directory, the input its data.mdb
// beside a fixed .imgstore; else a format-1 file). Our code must give an Error; crashes inside liblmdb or libhdf5 on a damaged file are the
// libraries' own (LMDB trusts its file by design), and are what this harness measures.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "error.hpp"
#include "fuzz_util.hpp"
#include "hdf5_store.hpp"
#include "lmdb_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  // IMGSTORE_FUZZ_BACKEND=hdf5 (or lmdb) fuzzes one library only.
  static const char* only = std::getenv("IMGSTORE_FUZZ_BACKEND");
  const bool hdf5 = only != nullptr ? std::string(only) == "hdf5" : (data[0] & 1) != 0;
  const bool directory = !hdf5 && (data[0] & 2) != 0;
  const std::string path = fuzz::scratch(hdf5 ? "store.h5" : directory ? "dir.lmdb" : "store.lmdb");
  if (directory) {
    ::mkdir(path.c_str(), 0775);
    ::unlink((path + "/lock.mdb").c_str());
    fuzz::write_file(path + "/.imgstore", reinterpret_cast<const std::uint8_t*>("imgstore-lmdb 2\nshape=4x4x1\n"), 28);
    fuzz::write_file(path + "/data.mdb", data + 1, size - 1);
  } else {
    ::unlink((path + "-lock").c_str());
    fuzz::write_file(path, data + 1, size - 1);
  }
  try {
    auto store = hdf5 ? imgstore::open_hdf5_store("t", {"path=" + path}, imgstore::OpenMode::must_exist)
                      : imgstore::open_lmdb_store("t", {"path=" + path}, imgstore::OpenMode::must_exist);
    auto rows = store->scan({});
    fuzz::drain(*rows);
    (void)store->check(true);
  } catch (const imgstore::Error&) {
  }
  return 0;
}
