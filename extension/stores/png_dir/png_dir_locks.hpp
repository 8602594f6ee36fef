// The locks of a png_dir store. The writer: an exclusive flock on the directory for a whole transaction (core's
// WriterLock, PngStore::writer_spot). The readers and the commit: a reader/writer lock on .imgstore
// (lock_for_reading, lock_for_applying), so a statement reads one committed state and a commit's apply waits
// for the statements reading. All waits are bounded (busy.hpp): false means the wait timed out.
#pragma once

#include <chrono>

namespace imgstore::png_dir {

// A reading statement's shared lock on .imgstore (open for reading); false when a commit held it up too long.
bool lock_for_reading(int fd, std::chrono::milliseconds timeout);
// A commit's exclusive lock on .imgstore (open for writing): closes the gate, then waits for the readers.
bool lock_for_applying(int fd, std::chrono::milliseconds timeout);

}  // namespace imgstore::png_dir
