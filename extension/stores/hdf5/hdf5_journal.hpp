// The rollback journal of an hdf5 store: `<path>-journal`, written before a commit changes committed rows in
// place (a DELETE's tombstone in /ids, a new label in /labels), removed when the commit is done. Its removal
// is the commit point of such a commit; a store opened with a journal beside it is rolled back to the state
// the journal recorded, so a writer killed at any moment leaves the old state or the new one, never a mix.
// A commit that only appends rows needs no journal: the committed row count, written last, is its commit point.
// Version 2 files (hdf5_format.hpp) make /commit's generation odd before writing the journal and even again,
// with the new row count, as the commit point; the journal is then removed. There, a journal found beside an
// even generation belongs to a commit that finished (it is only removed), beside an odd one it is rolled back.
//
// Layout (little-endian): "IMGJRNL1", u64 rows (the committed row count before the commit), u64 n, then n
// entries of (u64 row, i64 id, i64 label) holding the old /ids and /labels values, then the CRC-32 (zlib) of
// everything before it. Version 3 stores (with /checksums) write "IMGJRNL2", whose entries are (u64 row, i64 id,
// i64 label, u64 checksum): the old /checksums value too, which a relabel changes in place. A journal cut short or with a wrong CRC was never complete, so nothing was changed in
// place yet: it is simply removed.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace imgstore {

struct JournalEntry {
  std::uint64_t row = 0;
  std::int64_t id = 0;
  std::int64_t label = 0;
  std::uint64_t checksum = 0;  // IMGJRNL2 only
  friend bool operator==(const JournalEntry&, const JournalEntry&) = default;
};

struct Journal {
  std::uint64_t rows = 0;
  std::vector<JournalEntry> entries;
  bool checksums = false;  // "IMGJRNL2": entries carry the old /checksums value
  friend bool operator==(const Journal&, const Journal&) = default;
};

std::vector<std::uint8_t> encode_journal(const Journal& journal);
// nullopt for anything that is not a complete journal (short, wrong magic, wrong CRC, trailing bytes).
std::optional<Journal> decode_journal(std::span<const std::uint8_t> bytes);

std::string journal_path(const std::string& store_path);
// Writes the journal and makes it durable (the file and its directory entry) before anything is changed.
void write_journal(const std::string& store_path, const Journal& journal, const std::string& what);
// The journal beside the store, if there is a file: nullopt = no file; an empty optional<Journal> inside
// (has_value() false) = a file that is not a complete journal.
std::optional<std::optional<Journal>> read_journal(const std::string& store_path, const std::string& what);
// Removes it durably (the removal is the commit point).
void remove_journal(const std::string& store_path, const std::string& what);

}  // namespace imgstore
