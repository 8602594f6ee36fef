#include "writer_lock.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "fork_child.hpp"

namespace fs = std::filesystem;
using imgstore::LockSpot;
using imgstore::WriterLock;
using namespace std::chrono_literals;

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { REQUIRE(::pipe(fd) == 0); }
  ~Pipe() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
  void signal() const { CHECK(::write(fd[1], "x", 1) == 1); }
  bool wait() const {
    char c = 0;
    return ::read(fd[0], &c, 1) == 1;
  }
};

}  // namespace

TEST_CASE("a writer lock held by a parent keeps out its forked child, which inherited everything, until released") {
  const fs::path dir = fs::temp_directory_path() / ("imgstore-lock-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto kind : {LockSpot::Kind::file_byte, LockSpot::Kind::directory}) {
    CAPTURE(static_cast<int>(kind));
    const LockSpot spot{kind == LockSpot::Kind::directory ? dir.string() : (dir / "writer.lock").string(), kind, 0, true};
    WriterLock held(spot, 0ms, "parent");
    REQUIRE(held);
    const Pipe tried;     // child -> parent: it tried while the parent held the lock
    const Pipe released;  // parent -> child
    ForkedChild child([&] {
      int failures = 0;
      if (held) failures |= 1;  // the parent's lock, copied: not the child's
      // The child's own acquisition (a descriptor of its own) waits for the parent; once the parent releases,
      // it gets the lock although its copy of `held` is still there (its descriptor no longer the lock's).
      if (WriterLock(spot, 100ms, "child")) failures |= 2;
      tried.signal();
      if (!released.wait()) failures |= 4;
      if (!WriterLock(spot, 5000ms, "child")) failures |= 8;
      return failures;
    });
    CHECK(tried.wait());
    CHECK_FALSE(WriterLock(spot, 0ms, "parent, again"));  // one holder: another descriptor of this process waits too
    held.release();
    released.signal();
    CHECK(child.wait() == 0);
  }
  fs::remove_all(dir);
}
