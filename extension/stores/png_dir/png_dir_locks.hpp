// The locks of a png_dir store. The writer: an exclusive flock on the directory for a whole transaction (core's
// WriterLock, PngStore::writer_spot). The readers and the commit: a reader/writer lock on .imgstore
// (lock_for_reading, lock_for_applying), so a statement reads one committed state and a commit's apply waits
// for the statements reading. All waits are bounded (busy.hpp): false means the wait timed out.
#pragma once

#include <chrono>
#include <string>

namespace imgstore::png_dir {

// A reading statement's shared lock on .imgstore (open for reading); false when a commit held it up too long.
bool lock_for_reading(int fd, std::chrono::milliseconds timeout);
// A commit's exclusive lock on .imgstore (open for writing): closes the gate, then waits for the readers.
bool lock_for_applying(int fd, std::chrono::milliseconds timeout);
// Ends lock_for_applying (readers go on) and keeps the record lock (below), both on the same descriptor.
void unlock_applying(int fd);
// The writer's record lock (open for writing): COMMIT, while it is there, stands for a consistent state (the
// old one before the apply, the new one after) that readers may read without finishing the record.
void hold_record(int fd, const std::string& where);
void release_record(int fd);
// A reader's test (any descriptor of .imgstore): does a live writer hold the record lock?
bool record_held(int fd);

}  // namespace imgstore::png_dir
