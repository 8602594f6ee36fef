// Where an lmdb store's files are (lmdb_format.hpp: format 2 a directory, format 1 one file) and the file
// system steps that make, swap and clean up stores atomically: the identity of a file (so a process notices that
// a path now holds another data file), temporaries held by their maker with a flock (so an abandoned one is
// told from one in progress), synced writes and renames.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

#include "lmdb_format.hpp"
#include "posix_file.hpp"

namespace imgstore::lmdb {

using lmdb_format::Version;

struct Layout {
  Version version = Version::v2;
  std::string store;  // the path as given, trailing slashes dropped
  std::string data;   // LMDB's data file
  std::string lock;   // LMDB's lock file
  std::string meta() const { return store + "/" + lmdb_format::meta_file; }  // format 2's description

  static Layout of(Version version, const std::string& path);
};

// The store at `path`: nullopt when nothing is there (a store to make); format 1 for a regular file, format 2 for
// a directory holding data.mdb; anything else is Error(cantopen) saying what it is and what was expected.
std::optional<Layout> find_layout(const std::string& table, const std::string& path);

// A file's identity: a path that now names another file (a compaction swapped it) has another one.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  friend bool operator==(const FileId&, const FileId&) = default;
};
std::optional<FileId> file_id(const std::string& path);  // nullopt when it cannot be stat'ed
std::optional<FileId> file_id(int fd);

// A temporary beside a store (a directory, or format 1's compacted file), held by this process with an exclusive
// flock from its making until it is renamed into place or removed. Another process removes a temporary only when
// it can take that lock, i.e. only when its maker has died (remove_if_abandoned).
class Temporary {
 public:
  enum class Kind { directory, file };
  // Makes `path` and takes its lock; nullopt when `path` exists and a live process holds it. An abandoned one in
  // the way is removed first.
  static std::optional<Temporary> make(const std::string& path, Kind kind, const std::string& what);
  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }  // the directory, or the file opened read-write
  // Removes it and what is below it (best effort: an abandoned temporary is removed by the next one to find it).
  void remove() noexcept;
  // Drops the lock once the temporary has become the store (renamed into place).
  void release() noexcept { fd_ = Fd(); }

 private:
  Temporary(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  Fd fd_;
};

// Removes `path` (a directory tree or a file) unless a live process holds it; true when nothing is left there.
bool remove_if_abandoned(const std::string& path) noexcept;
// Every abandoned temporary of the store at `store`: store.imgstore-new-*/ and store.imgstore-compact(/).
void remove_abandoned_temporaries(const std::string& store) noexcept;
// A fresh name for making a store at `store`: store.imgstore-new-<pid>-<n>.
std::string new_store_name(const std::string& store);

std::string parent_of(const std::string& path);
// fsync of a file or a directory, by its path; throws Error naming `what` and the path.
void fsync_path(const std::string& path, const std::string& what);
// Writes `text` to a new file `path` and fsyncs it.
void write_new_synced(const std::string& path, std::string_view text, const std::string& what);
// renameat2 with `flags` (RENAME_NOREPLACE, RENAME_EXCHANGE): 0 or errno.
int rename2(const std::string& from, const std::string& to, unsigned flags) noexcept;

}  // namespace imgstore::lmdb
