#include "shard_folder.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <vector>

#include "error.hpp"

namespace imgstore::sharded {

std::string manifest_path(const std::string& folder) { return folder + "/" + std::string(kManifestName); }

bool has_manifest(const std::string& folder) {
  struct stat st{};
  return ::stat(manifest_path(folder).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::optional<Manifest> read_manifest(const std::string& folder) {
  const std::string path = manifest_path(folder);
  if (!has_manifest(folder)) return std::nullopt;
  std::vector<std::uint8_t> bytes;
  read_whole(path, bytes, "sharded table manifest");
  return parse_manifest(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), path);
}

void write_manifest(const std::string& folder, const Manifest& manifest) {
  const std::string path = manifest_path(folder);
  const std::string temp = path + ".tmp";
  write_synced(temp, to_json(manifest), "sharded table manifest");
  if (::rename(temp.c_str(), path.c_str()) != 0) throw_errno("cannot rename '" + temp + "' to '" + path + "'", errno);
  const Fd dir = open_or_throw(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC, "sharded table folder");
  fsync_or_throw(dir.get(), folder, "sharded table folder");
}

WriterLock lock_writer(const std::string& table, const std::string& folder, std::chrono::milliseconds timeout, bool wait) {
  WriterLock lock(LockSpot{folder + "/writer.lock", LockSpot::Kind::file_byte, 0, true}, wait ? timeout : std::chrono::milliseconds(0),
                  "table " + table + ": writer lock");
  if (lock || !wait) return lock;
  throw Error("table " + table + ": another connection is writing the sharded table '" + folder + "'; waited " +
                  std::to_string(timeout.count()) + " ms, try again after it commits",
              ErrorKind::busy);
}

}  // namespace imgstore::sharded
