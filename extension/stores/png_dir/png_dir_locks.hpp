// The locks of a png_dir store. The writer: an exclusive flock on the directory for a whole transaction (core's
// WriterLock, PngStore::writer_spot). The readers and the commit: a reader/writer lock on .imgstore
// (lock_for_reading, lock_for_applying) that a statement holds only while it starts (it reads the generation
// and labels.csv of one committed state) and a commit holds while it applies; then the statement holds its
// generation (hold_generation) for as long as it reads, which keeps the old files it may need (.old/<k>, k
// after it; png_versions.hpp). A reader of another tool may hold the reader lock for its whole read
// (docs/formats.md): a commit waits for it. All waits are bounded (busy.hpp): false means the wait timed out.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace imgstore::png_dir {

// A reading statement's shared lock on .imgstore (open for reading); false when a commit held it up too long.
bool lock_for_reading(int fd, std::chrono::milliseconds timeout);
// A reading statement, once started: holds `generation` (shared) and lets go of the reader lock.
void hold_generation(int fd, std::uint64_t generation, const std::string& where);
// Does a statement that began before `generation` hold its generation (another descriptor's lock)?
bool readers_before(int fd, std::uint64_t generation);
// A commit's exclusive lock on .imgstore (open for writing): closes the gate, then waits for the readers.
bool lock_for_applying(int fd, std::chrono::milliseconds timeout);
// Ends lock_for_applying (readers go on) and keeps the record lock (below), both on the same descriptor.
void unlock_applying(int fd);
// The writer's record lock (open for writing): COMMIT, while it is there, stands for a consistent state (the
// old one before the apply, the new one after) that readers may read without finishing the record.
void hold_record(int fd, const std::string& where);
void release_record(int fd) noexcept;
// hold_record for one scope: let go on every way out of it (the descriptor may outlive it, as a prepared one).
class RecordHold {
 public:
  RecordHold(int fd, const std::string& where) : fd_(fd) { hold_record(fd, where); }
  ~RecordHold() { release_record(fd_); }
  RecordHold(const RecordHold&) = delete;
  RecordHold& operator=(const RecordHold&) = delete;

 private:
  const int fd_;
};
// A reader's test (any descriptor of .imgstore): does a live writer hold the record lock?
bool record_held(int fd);

}  // namespace imgstore::png_dir
