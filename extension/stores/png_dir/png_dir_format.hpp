// The on-disk layout of a png_dir store, pure (no file I/O), so it is unit-tested and fuzzed on its own:
//   <id>.png              one 8-bit PNG per row (png_codec.hpp), opens in any viewer
//   labels.csv            header `id,label`, then one `id,label` line per row: the index (a row exists when its
//                         id is listed)
//   .imgstore             "imgstore-png_dir 1" and "shape=HxWxC"; also the reader/writer lock (png_dir_locks.hpp)
//   .pending/             exists while a transaction writes (and after a crash, until recovery)
//   .pending/new          the ids a transaction wrote directly as <id>.png, one a line, each written before
//                         its file is created
//   .pending/<id>.<n>.png a transaction's replacements of committed ids (readers may still read the old file)
//   labels.csv.pending    at commit: the new labels.csv, or the lines to append to it
//   COMMIT                the commit record (below); its atomic rename into place is the commit point
//   .old/generation       the store's generation: how many commits replaced or deleted image files (none: 0)
//   .old/<k>/<id>.png     the files commit k replaced or deleted, kept (a hard link, or a copy) for the
//                         statements that began before it, until none is left (png_versions.hpp)
//
// One directory operation per new image: an id not committed when the transaction began is written straight
// to <id>.png. Readers never see it, as they read only the ids labels.csv lists; the commit lists it. A
// transaction that does not commit (ROLLBACK, a failed statement, a crash) leaves such files unlisted: rollback
// unlinks them, and recovery (under the writer lock, only when .pending exists) unlinks the ids .pending/new
// names that labels.csv does not list. An id committed before, or written twice in one transaction, goes
// through .pending and a rename at commit, so the committed file stays whole until the commit point.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shape.hpp"

namespace imgstore::png_dir_format {

// Version 2 keeps old files in .old/ for readers; this build reads and writes version 1 stores too, and marks
// them version 2 with their first transaction that writes, so that an older build refuses them from then on
// (it would replace files under this build's readers).
inline constexpr const char* format_tag = "imgstore-png_dir 2";
inline constexpr const char* format_tag_v1 = "imgstore-png_dir 1";
inline constexpr const char* labels_file = "labels.csv";
inline constexpr const char* meta_file = ".imgstore";
inline constexpr const char* pending_dir = ".pending";
inline constexpr const char* commit_file = "COMMIT";
inline constexpr const char* journal_file = "new";  // inside .pending
inline constexpr const char* old_dir = ".old";
inline constexpr const char* generation_file = "generation";  // inside .old

// .pending/new: the ids in it (a line cut short by a crash is ignored: its file was never created).
std::vector<std::int64_t> parse_journal(std::string_view text);

std::string image_name(std::int64_t id);                       // "<id>.png"
std::string pending_name(std::int64_t id, std::uint64_t seq);  // "<id>.<seq>.png", inside .pending/

// .imgstore's text, and the shape it records (Error(corrupt) naming `what` if it is not ours, version 1 or 2).
std::string meta_text(const Shape& shape);
Shape parse_meta(std::string_view text, const std::string& what);
inline bool is_version_1(std::string_view meta) { return meta.starts_with(format_tag_v1); }

// .old/generation: "<n>\n", n <= kMostGenerations; Error(corrupt) naming `what` for anything else.
inline constexpr std::uint64_t kMostGenerations = (std::uint64_t{1} << 62) - 1;
std::string generation_text(std::uint64_t generation);
std::uint64_t parse_generation(std::string_view text, const std::string& what);

using Labels = std::map<std::int64_t, std::int64_t>;  // id -> label
// labels.csv: Error(corrupt) naming `what`, the line and what was expected for a bad header, a line that is not
// two integers, a negative id or a repeated id. CRLF line ends are accepted.
Labels parse_labels_csv(std::string_view text, const std::string& what);
std::string labels_csv(const Labels& labels);                                // the whole file
std::string labels_csv_lines(const std::vector<std::pair<std::int64_t, std::int64_t>>& rows);  // lines to append

// The commit record: how labels.csv changes (replaced by labels.csv.pending, or that file's lines appended at
// byte `append_at`, which also cuts off a half-written earlier append), which pending files become which
// images, which images go, and (a record that replaces or deletes) the generation it makes, whose .old/<k>
// keeps the files it replaces or deletes. Records of earlier builds (versions 1 and 2) have no generation.
struct CommitRecord {
  bool replace_csv = false;
  std::int64_t append_at = 0;
  std::vector<std::pair<std::int64_t, std::uint64_t>> renames;  // (id, seq): .pending/<id>.<seq>.png -> <id>.png
  std::vector<std::int64_t> deletes;  // <id>.png removed (also new ids written, then deleted, in the transaction)
  std::optional<std::uint64_t> generation;
  friend bool operator==(const CommitRecord&, const CommitRecord&) = default;
};
std::string encode_commit_record(const CommitRecord& record);
// A record of new ids only: lines appended to labels.csv, no file renamed over or deleted.
inline bool appends_only(const CommitRecord& r) { return !r.replace_csv && r.renames.empty() && r.deletes.empty(); }
// Error(corrupt) naming `what` for anything that is not a complete record: every number is checked, so a
// damaged record cannot name a file outside the store.
CommitRecord parse_commit_record(std::string_view text, const std::string& what);

}  // namespace imgstore::png_dir_format
