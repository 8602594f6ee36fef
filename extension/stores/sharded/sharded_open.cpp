// Choosing, creating and opening a sharded table; checking its shards against the manifest; undoing a
// commit that a killed writer left unfinished (shard_journal.hpp does the work).

#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "args.hpp"
#include "busy.hpp"
#include "shard_folder.hpp"
#include "sharded_store.hpp"
#include "sharded_store_impl.hpp"

namespace imgstore {

namespace {

using namespace sharded;

struct Split {
  std::optional<std::string> shards;   // the `shards` argument, unparsed
  std::optional<std::string> path;
  std::optional<std::string> shape;
  std::optional<std::string> threads;
  std::optional<std::string> timeout;
  std::vector<std::string> rest;       // everything else, handed to every shard
  std::vector<std::string> without_shards;  // every argument but `shards`, as given
};

Split split_arguments(const std::vector<std::string>& args) {
  Split out;
  for (const auto& arg : args) {
    const auto kv = split_argument(arg);
    if (!kv || kv->first != "shards") out.without_shards.push_back(arg);
    if (kv && kv->first == "shards") {
      out.shards = kv->second;
    } else if (kv && kv->first == "path") {
      out.path = kv->second;
    } else if (kv && kv->first == "shape") {
      out.shape = kv->second;
    } else if (kv && kv->first == "threads") {
      out.threads = kv->second;
    } else if (kv && kv->first == "timeout") {
      out.timeout = kv->second;
    } else {
      out.rest.push_back(arg);
    }
  }
  return out;
}

std::int64_t parse_shards(const std::string& table, const std::string& text) {
  const Args one(table, {"shards"}, {"shards=" + text});
  return one.integer("shards", 1, kMaxShards, 1);
}

// The arguments a shard is opened with: its own path, the table's shape, timeout and the backend's other
// arguments, and threads=1: the table's `threads` are its lanes (sharded_store_impl.hpp), and each shard's codec
// work (PNG and gzip encoding and decoding) runs on its lane, so that N threads are N threads however many
// shards there are (a pool per shard made 2 + 16 threads for 8 shards on 2 cores, and scans slower).
std::vector<std::string> shard_arguments(const Split& split, const std::string& path, const Shape& shape) {
  std::vector<std::string> args = split.rest;
  std::string quoted;
  for (const char c : path) quoted += c == '\'' ? std::string("''") : std::string(1, c);
  args.push_back("path='" + quoted + "'");
  args.push_back("shape='" + shape.str() + "'");
  args.push_back("threads=1");
  if (split.timeout) args.push_back("timeout=" + *split.timeout);
  return args;
}

[[noreturn]] void throw_not_a_table(const std::string& table, const std::string& folder, const std::string& what) {
  throw Error("table " + table + ": '" + folder + "' " + what +
                  ", not a sharded table's folder (it has no manifest.json); shards=N makes a new table at a new "
                  "or empty path (to shard a store: CREATE the sharded table elsewhere, then INSERT INTO it SELECT "
                  "* FROM the store)",
              ErrorKind::cantopen);
}

// A new table's folder: made, or an existing one that holds nothing but what an interrupted creation of this
// table leaves (its shards and their temporaries, its writer lock, a manifest not yet renamed into place).
// Anything else is someone's data: an lmdb or png_dir store's own folder would otherwise get an empty table
// made inside it, which from then on hid its images.
void make_folder(const std::string& table, const std::string& folder) {
  if (::mkdir(folder.c_str(), 0775) == 0) return;
  const int err = errno;
  struct stat st{};
  if (err != EEXIST || ::stat(folder.c_str(), &st) != 0) {
    throw_errno("table " + table + ": cannot create the sharded table's folder '" + folder + "'", err);
  }
  if (!S_ISDIR(st.st_mode)) throw_not_a_table(table, folder, "is a file (a single store?)");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with("shard-") && !name.starts_with("manifest.json") && name != "writer.lock") {
      throw_not_a_table(table, folder, "holds '" + name + "': it is a single store, or another folder of files");
    }
  }
  if (ec) throw_errno("table " + table + ": cannot list the sharded table's folder '" + folder + "'", ec.value());
}

// Opens every shard and checks it against the manifest: present, the manifest's shape, the manifest's row count.
std::vector<std::unique_ptr<Store>> open_shards(const std::string& table, const std::string& folder,
                                                const Manifest& m, const Split& split,
                                                const BackendOpener& open_single, OpenMode mode) {
  std::vector<std::unique_ptr<Store>> shards;
  for (const ShardEntry& entry : m.shards) {
    const std::string path = folder + "/" + entry.file;
    const auto bad = [&](const std::string& why) {
      return Error("table " + table + ": shard '" + path + "' " + why + " (manifest '" + manifest_path(folder) + "')",
                   ErrorKind::corrupt);
    };
    struct stat st{};
    if (mode != OpenMode::create_if_missing && ::stat(path.c_str(), &st) != 0) throw bad("is missing; the manifest lists " + std::to_string(m.shards.size()) + " shards");
    std::unique_ptr<Store> shard;
    try {
      shard = open_single(table, shard_arguments(split, path, m.shape), mode);
    } catch (const Error& e) {
      if (mode == OpenMode::create_if_missing) throw;  // the backend's own message (an argument, a full disk)
      throw Error("table " + table + ": shard '" + path + "': " + e.what(), e.kind());
    }
    if (shard->shape() != m.shape) throw bad("has shape " + shard->shape().str() + "; the manifest says " + m.shape.str());
    if (!m.unfinished() && mode != OpenMode::inspect && shard->count() != entry.rows) {
      throw bad("has " + std::to_string(shard->count()) + " rows; the manifest says " + std::to_string(entry.rows));
    }
    shards.push_back(std::move(shard));
  }
  return shards;
}

}  // namespace

std::unique_ptr<Store> open_maybe_sharded(const std::string& backend, const BackendOpener& open_single,
                                          const std::string& table, const std::vector<std::string>& args,
                                          OpenMode mode) {
  const Split split = split_arguments(args);
  const std::int64_t wanted = split.shards ? parse_shards(table, *split.shards) : 0;
  const bool manifest_there = split.path && has_manifest(*split.path);
  if (wanted == 1 && manifest_there) {
    const std::optional<Manifest> m = read_manifest(*split.path);
    throw Error("table " + table + ": '" + *split.path + "' has " + std::to_string(m ? m->shards.size() : 0) +
                    " shards; shards=1 was asked for",
                ErrorKind::cantopen);
  }
  if (wanted == 1 || (wanted == 0 && !manifest_there)) return open_single(table, wanted == 1 ? split.without_shards : args, mode);
  // Checks every argument as the backend does (unknown keys, threads, timeout), before touching any file.
  const Args checked(table, {"path", "shape", "shards", "threads", "timeout", "level", "compression", "chunk", "verify"}, args);
  const unsigned threads = threads_argument(checked);
  const std::chrono::milliseconds timeout = timeout_argument(checked);
  const std::string folder = checked.require("path");
  std::optional<Shape> shape;
  if (split.shape) shape = parse_store_shape(*split.shape, "table " + table + ": shape");

  std::optional<Manifest> m = read_manifest(folder);
  if (!m) {
    if (mode != OpenMode::create_if_missing || !shape) throw_missing_store(table, folder, mode);
    make_folder(table, folder);
    m = new_manifest(backend, *shape, static_cast<std::size_t>(wanted));
    std::vector<std::unique_ptr<Store>> shards = open_shards(table, folder, *m, split, open_single, mode == OpenMode::inspect ? mode : OpenMode::create_if_missing);
    write_manifest(folder, *m);  // last: a folder without a manifest is not a table yet
    return std::make_unique<ShardedStore>(table, folder, std::move(*m), std::move(shards), threads, timeout);
  }
  if (m->backend != backend) {
    throw Error("table " + table + ": '" + folder + "' is a sharded " + m->backend + " table; expected " + backend,
                ErrorKind::cantopen);
  }
  if (wanted != 0 && static_cast<std::size_t>(wanted) != m->shards.size()) {
    throw Error("table " + table + ": '" + folder + "' has " + std::to_string(m->shards.size()) + " shards; shards=" +
                    std::to_string(wanted) + " was asked for",
                ErrorKind::cantopen);
  }
  if (shape && *shape != m->shape) throw shape_mismatch(table, *shape, manifest_path(folder), m->shape);
  const OpenMode shard_mode = mode == OpenMode::inspect ? mode : OpenMode::must_exist;
  // Another process committing between the manifest's read and a shard's count shows as a shard that disagrees
  // with the manifest (its shards commit first): while the manifest changes, it is read again, up to `timeout`.
  std::vector<std::unique_ptr<Store>> shards;
  const bool opened = wait_for([&] {
    try {
      shards = open_shards(table, folder, *m, split, open_single, shard_mode);
      return true;
    } catch (const Error& e) {
      auto again = read_manifest(folder);
      if (e.kind() != ErrorKind::corrupt || !again || *again == *m) throw;  // not a commit in between
      m = std::move(again);
      return false;
    }
  }, timeout);
  if (!opened) throw_writer_busy(table, folder, "another process", timeout);
  // A writer died mid-commit: undone now, unless another process is writing (its own begin() recovers first)
  // or this one cannot (a folder it may not write, a shard it cannot change): then the table still opens, its
  // readers hide pending ids and a commit that changed rows is their error, naming why. Left as it is for
  // inspection (imgstore_check reports it).
  if (m->unfinished() && mode != OpenMode::inspect) {
    try {
      if (auto after = try_recover(table, folder, shards)) m = std::move(after);
    } catch (const Error&) {
    }
  }
  return std::make_unique<ShardedStore>(table, folder, std::move(*m), std::move(shards), threads, timeout);
}

}  // namespace imgstore
