// The files of a sharded table's folder besides the shards: the manifest (replaced atomically: written to a
// temporary, fsynced, renamed, the folder fsynced) and `writer.lock`, whose OFD lock one writer holds.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "posix_file.hpp"
#include "shard_manifest.hpp"
#include "writer_lock.hpp"

namespace imgstore::sharded {

std::string manifest_path(const std::string& folder);
bool has_manifest(const std::string& folder);
// The manifest, or nullopt when the folder has none. A manifest that does not parse is an error naming it.
std::optional<Manifest> read_manifest(const std::string& folder);
void write_manifest(const std::string& folder, const Manifest& manifest);

// The table's writer lock, taken within `timeout` (else ErrorKind::busy naming the table); `wait` false: one try,
// not held when another process holds it.
WriterLock lock_writer(const std::string& table, const std::string& folder, std::chrono::milliseconds timeout, bool wait = true);

}  // namespace imgstore::sharded
