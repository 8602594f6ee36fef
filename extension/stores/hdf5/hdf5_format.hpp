// The on-disk layout of an hdf5 store, readable with h5py or h5dump without our code:
//   /images  (N, H, W, C) uint8, chunked (chunk rows x H x W x C), extendible in N, optionally gzip
//   /labels  (N) int64, chunked (row_chunk rows)
//   /ids     (N) int64, chunked alike; -1 marks a deleted row (a tombstone)
//   /checksums (N) uint64, chunked alike (version 3): each row's image_checksum(id, label, pixels)
//            (checksum.hpp), verified on every read of its pixels; a tombstone's is not checked
//   root attributes: imgstore_format = "imgstore-hdf5 3", shape = "HxWxC"
//   /commit  (2) uint64, chunked: [generation, rows]; rows = the committed row count; generation is even
//            between commits and odd while a commit changes committed rows in place (a seqlock, see below)
//   beside the file, while a commit that changes committed rows runs: `<path>-journal` (hdf5_journal.hpp)
// Rows past `rows` (left by a transaction that did not commit) are not part of the store. A row's id is in
// /ids, so rows need not be in id order.
//
// A store of shape 'any' (images that differ in height, width and channels; shape attribute "any") keeps the
// same /labels, /ids, /checksums, /commit and root attributes (format 3, the same commit protocol and journal),
// and the ragged-array layout h5py users know, with fixed-size types only (SWMR cannot write variable-length
// ones):
//   /images  (B) uint8, 1-D, chunked (kAnyChunkBytes bytes a chunk, or `chunk`), extendible, optionally gzip:
//            every row's pixels (HWC) one after another in row order; a new row appends; B = the end of the
//            last committed row (committed bytes never change, as in the one-shape layout)
//   /offsets (N) uint64, chunked (kAnyRowChunk rows): where row i's pixels start in /images
//   /shapes  (N, 3) uint32, chunked (kAnyRowChunk x 3): row i's height, width, channels
//   /checksums[i] = image_checksum(id, label, pixels) XOR shape_term(shape) (checksum.hpp: XXH3-64 of the three
//            dimensions as little-endian uint32), so a damaged /shapes entry fails the check as a damaged pixel
// In h5py: o = int(f['offsets'][i]); h, w, c = (int(x) for x in f['shapes'][i]);
//          image = f['images'][o:o + h * w * c].reshape(h, w, c)
// /offsets and /shapes of a committed row never change (a replaced image is a new row, as ever), so the
// seqlock and the journal are as above. A layout is told by /images' rank: 4 (one shape) or 1 ('any'); an
// imgstore made before 'any' refuses such a file ("/images has rank 1; expected uint8 of rank 4").
//
// Version 2 files are made with the latest file format (superblock 3) so that HDF5's SWMR works on them: the
// one writer opens the file H5F_ACC_RDWR | H5F_ACC_SWMR_WRITE (HDF5 drops its whole-file lock then) and
// readers open it H5F_ACC_RDONLY | H5F_ACC_SWMR_READ without file locking, so readers and the writer never
// keep each other out. Writers exclude each other with an OFD lock on byte 0 of the .h5 file (kWriterLockByte),
// which HDF5's flock() does not see. A reader reads /commit, then /ids and /labels up to `rows`, then /commit
// again (H5Drefresh before each): the same even generation both times means it read one committed state;
// otherwise it reads again. An odd generation is read past with the journal's old values (hdf5_file.cpp,
// read_before_commit): readers do not wait for a commit. Committed pixels never change, so /images needs no such check. docs/formats.md, "h5py beside a writer".
//
// Version 3 is version 2 plus /checksums. Version 2 files (no /checksums) are still read and written as
// version 2, unchecked; a copy (or imgstore_compact) makes them version 3.
// Version 1 files ("imgstore-hdf5 1": the committed row count in a root attribute `rows`, default file format,
// no /commit) are still read and written, with HDF5's whole-file lock as before: a writer has the file alone.
// Files without a format attribute (made by other tools) are read as version 1 with every row committed.
// Pure numbers and names, no HDF5 calls: the store and the benchmarks' raw HDF5 code share them.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

#include "shape.hpp"

namespace imgstore::hdf5 {

inline constexpr const char* kFormat = "imgstore-hdf5 3";    // what new stores are made as
inline constexpr const char* kFormatV2 = "imgstore-hdf5 2";  // still read and written, without checksums
inline constexpr const char* kFormatV1 = "imgstore-hdf5 1";  // still read and written
inline constexpr const char* kCommit = "commit";
inline constexpr long kWriterLockByte = 0;
inline constexpr const char* kImages = "images";
inline constexpr const char* kLabels = "labels";
inline constexpr const char* kIds = "ids";
inline constexpr const char* kChecksums = "checksums";  // version 3
inline constexpr const char* kOffsets = "offsets";      // shape 'any'
inline constexpr const char* kShapes = "shapes";        // shape 'any'
inline constexpr const char* kFormatAttribute = "imgstore_format";
inline constexpr const char* kShapeAttribute = "shape";
inline constexpr const char* kRowsAttribute = "rows";  // version 1 only
inline constexpr std::int64_t kTombstone = -1;

// /commit as a reader sees it. The seqlock read (above) saw one committed state when /commit read the same
// before and after /ids and /labels, both words: the writer's 16-byte pwrite of /commit can be seen torn, the
// new generation beside the old row count; comparing the generation alone would take that pair for a commit.
struct CommitWord {
  std::uint64_t generation = 0;
  std::uint64_t rows = 0;
  friend constexpr bool operator==(const CommitWord&, const CommitWord&) = default;
};
constexpr bool one_commit(const CommitWord& before, const CommitWord& after) {
  return before.generation % 2 == 0 && before == after;
}

// The start of the file (HDF5's file format specification, "Superblock"): the signature, then the superblock
// version (0, 1: the default file format; 2, 3: the latest, which version 2 stores use). Versions 2 and 3 go on
// with the size of offsets and of lengths, the status flags, then four addresses: base, superblock extension,
// end of file, root object header; a checksum follows. The end of file is where HDF5 has allocated space up to
// (H5Fclose cuts the file to it, H5Fopen refuses a file shorter than it: "truncated file").
inline constexpr std::size_t kSuperblockHead = 36;  // up to and including the end-of-file address
struct SuperblockHead {
  int version = -1;                  // -1: no HDF5 signature at byte 0 (a user block), or a short file
  std::optional<std::uint64_t> end;  // versions 2 and 3 with 8-byte offsets: base address + end of file
};
inline SuperblockHead parse_superblock_head(std::span<const std::uint8_t> head) {
  static constexpr std::uint8_t kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  SuperblockHead sb;
  if (head.size() < 9 || std::memcmp(head.data(), kSignature, sizeof kSignature) != 0) return sb;
  sb.version = head[8];
  if ((sb.version != 2 && sb.version != 3) || head.size() < kSuperblockHead || head[9] != 8) return sb;
  const auto u64 = [&](std::size_t at) {
    std::uint64_t x = 0;
    for (std::size_t i = 8; i-- > 0;) x = (x << 8) | head[at + i];
    return x;
  };
  const std::uint64_t base = u64(12);
  const std::uint64_t eof = u64(28);
  if (eof <= ~base) sb.end = base + eof;  // (an overflowing sum is no end at all)
  return sb;
}

// The chunk cache every dataset but unfiltered /images (none: hdf5_open.hpp) is opened with: room for a block
// of chunks being filled or read, with many slots (a prime) to avoid collisions; w0 = 1 evicts fully read or
// written chunks first.
// 8 MiB: twice a scan block (kScanBlockBytes), and the bound on what a gzip scan's cache adds to the heap.
struct ChunkCache {
  std::size_t slots;
  std::size_t bytes;
  double w0;
};
inline constexpr ChunkCache kChunkCache{12421, std::size_t{8} << 20, 1.0};

// Rows per /images chunk when not given: about 64 KiB of pixels, so a random point read decompresses little
// while a scan still reads large blocks (21 for 32x32x3, 83 for 28x28x1).
constexpr std::uint64_t default_chunk_rows(std::uint64_t image_bytes) {
  return std::clamp<std::uint64_t>((64 * 1024) / std::max<std::uint64_t>(image_bytes, 1), 1, 1024);
}

// Rows per /labels and /ids chunk.
constexpr std::uint64_t row_chunk_rows(std::uint64_t image_chunk_rows) { return std::max<std::uint64_t>(image_chunk_rows, 1024); }

// Whole chunks of about `bytes` (at least one chunk): the unit of one H5Dread or H5Dwrite.
constexpr std::uint64_t block_rows(std::uint64_t chunk_rows, std::uint64_t image_bytes, std::uint64_t bytes) {
  return std::max<std::uint64_t>(1, bytes / std::max<std::uint64_t>(chunk_rows * image_bytes, 1)) * chunk_rows;
}
inline constexpr std::uint64_t kScanBlockBytes = std::uint64_t{4} << 20;   // a scan reads about 4 MiB at a time
// A scan's first block; each next one is twice as large, up to kScanBlockBytes: a scan taken up again after each
// row its connection writes (store_rows.hpp) reads what it uses, not 4 MiB a row.
inline constexpr std::uint64_t kFirstScanBlockBytes = std::uint64_t{64} << 10;
inline constexpr std::uint64_t kWriteBlockBytes = std::uint64_t{1} << 20;  // an insert writes about 1 MiB

// ---- shape 'any'

// Bytes per /images chunk of a store of shape 'any' when not given: 64 KiB, as a one-shape store's default.
inline constexpr std::uint64_t kAnyChunkBytes = 64 * 1024;
// Rows per /labels, /ids, /checksums, /offsets and /shapes chunk of a store of shape 'any'.
inline constexpr std::uint64_t kAnyRowChunk = 1024;

// A row's /shapes entry: height, width, channels as stored.
using RowDims = std::array<std::uint32_t, 3>;
inline RowDims row_dims(const Shape& shape) { return {shape.height, shape.width, shape.channels}; }

// The shape a /shapes entry records, when it is an image shape (make_shape's limits); nullopt for a damaged one.
constexpr std::optional<Shape> shape_of(const RowDims& d) {
  if (d[0] == 0 || d[1] == 0 || d[2] == 0 || d[2] > max_channels) return std::nullopt;
  if (d[0] > max_image_bytes || d[1] > max_image_bytes ||
      std::uint64_t{d[0]} * d[1] > max_image_bytes / d[2]) {
    return std::nullopt;
  }
  return Shape{d[0], d[1], d[2]};
}

// Where a row's pixels end in /images (offset + height*width*channels), when its entries are sound and the
// pixels lie within the first `end` bytes; nullopt otherwise (a damaged /offsets or /shapes entry).
constexpr std::optional<std::uint64_t> row_end(std::uint64_t offset, const RowDims& d, std::uint64_t end) {
  const auto shape = shape_of(d);
  if (!shape || offset > end || end - offset < shape->bytes()) return std::nullopt;
  return offset + shape->bytes();
}

}  // namespace imgstore::hdf5
