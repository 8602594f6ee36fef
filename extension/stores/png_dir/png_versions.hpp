// Old files of a png_dir store, kept for the statements that began before a commit, so that a commit never
// waits for them (on disk: png_dir_format.hpp; locks: png_dir_locks.hpp).
//
// A commit that replaces or deletes images makes generation k (its record names k): before it renames a
// pending file over <id>.png or unlinks a deleted one, it links <id>.png into .old/<k>/ (only while a statement
// of an earlier generation reads: otherwise nobody needs it), so .old/<k>/<id>.png is the file generation k-1
// held. A statement that began at generation g opens <id>.png,
// then looks in .old/<g+1>/, .old/<g+2>/, ... (all there while it holds g): the first that has <id>.png holds
// its version; if none has, the file it opened is. Opening first is what makes this right: a file replaced
// after the open is the old one, and one replaced before it was linked into .old/ before that. The writer
// removes .old/<k> once no statement that began before k is left.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "png_dir_format.hpp"
#include "posix_file.hpp"

namespace imgstore::png_dir {

// .old/generation; 0 when there is none (no commit has replaced or deleted an image). An Error naming the file
// when it is damaged, or missing beside kept files (.old/1).
std::uint64_t read_generation(const std::string& dir, const std::string& what);
// Under the writer lock (recovery): a damaged or lost generation file is rebuilt, and .old/ emptied, when no
// statement holds a generation (`meta`: a descriptor of .imgstore holding none); false while one does.
bool settle_generation(const std::string& dir, int meta, const std::string& where);
// Writes it (synced, renamed into place); the caller syncs .old (sync_old) before it removes the record.
void write_generation(const std::string& dir, std::uint64_t generation, const std::string& where);
void sync_old(const std::string& dir, const std::string& where);

// The first step of applying a record of generation k, under the exclusive lock: the files it replaces or
// deletes linked into .old/<k>/ (copied where the file system has no hard links), if a statement of an earlier
// generation is reading (`meta`: a descriptor of .imgstore holding no generation). Idempotent (a file kept
// already stays), so a crash is finished by running it again.
void keep_old(const std::string& dir, const png_dir_format::CommitRecord& record, int meta, const std::string& where);

// The file of `id` (at `path`, <id>.png in `dir`) for a statement that began at generation `*as_of`, or, with
// no generation (inside the writer's own transaction), `path` itself; `opened` says which file it is. An empty
// Fd when the file is in none of the places (missing); an Error for any other failure to open it.
Fd open_as_of(const std::string& dir, const std::string& path, std::int64_t id, std::optional<std::uint64_t> as_of,
              std::string& opened, const std::string& what);

// Removes each .old/<k> no statement needs any more (none that began before k reads). `meta` is a descriptor of
// .imgstore holding no reader's lock. Only the writer calls it (under the directory's flock), so no commit is
// making a folder meanwhile. Best effort: what cannot be removed is tried again at the next commit.
void prune_old(const std::string& dir, int meta);

}  // namespace imgstore::png_dir
