#include "thread_pool.hpp"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

using imgstore::Args;
using imgstore::ThreadPool;

TEST_CASE("thread pool: results come back in submission order, computed on the workers") {
  ThreadPool pool(2);
  CHECK(pool.size() == 2);
  std::vector<std::future<int>> results;
  for (int i = 0; i < 100; ++i) results.push_back(pool.submit([i] { return i * i; }));
  for (int i = 0; i < 100; ++i) CHECK(results[static_cast<std::size_t>(i)].get() == i * i);
}

TEST_CASE("thread pool: a task's exception reaches whoever waits for it") {
  ThreadPool pool(2);
  auto failing = pool.submit([]() -> int { throw std::runtime_error("bad image 7"); });
  auto fine = pool.submit([] { return 1; });
  CHECK_THROWS_WITH(failing.get(), "bad image 7");
  CHECK(fine.get() == 1);
}

TEST_CASE("thread pool: destruction finishes the queued tasks") {
  std::atomic<int> done = 0;
  {
    ThreadPool pool(1);
    for (int i = 0; i < 50; ++i) pool.submit([&] { ++done; });
  }
  CHECK(done == 50);
}

TEST_CASE("threads argument: default is the core count, 1..256 accepted, others refused naming the table") {
  CHECK(imgstore::threads_argument(Args("t", {"threads"}, {})) == imgstore::default_threads());
  CHECK(imgstore::threads_argument(Args("t", {"threads"}, {"threads=1"})) == 1);
  CHECK(imgstore::threads_argument(Args("t", {"threads"}, {"threads=4"})) == 4);
  CHECK_THROWS_WITH_AS(imgstore::threads_argument(Args("t", {"threads"}, {"threads=0"})),
                       doctest::Contains("table t"), std::exception);
  CHECK_THROWS_AS(imgstore::threads_argument(Args("t", {"threads"}, {"threads=two"})), std::exception);
}

TEST_CASE("a pool inherited through fork(): the child makes its own and dropping the parent's does not hang") {
  imgstore::LazyPool lazy(2);
  REQUIRE(lazy.get() != nullptr);
  CHECK(lazy.get()->submit([] { return 1; }).get() == 1);  // the parent's workers exist
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The inherited pool has no workers here: LazyPool replaces it (the old one's destructor must not join).
    ThreadPool* const own = lazy.get();
    const bool ok = own != nullptr && own->usable() && own->submit([] { return 7; }).get() == 7;
    ::_exit(ok ? 0 : 1);
  }
  int status = 0;
  for (int waited_ms = 0; waited_ms < 10000 && ::waitpid(child, &status, WNOHANG) == 0; waited_ms += 10) ::usleep(10000);
  if (::waitpid(child, &status, WNOHANG) == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL("the forked child hung");
  }
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}

TEST_CASE("LazyPool: no pool with threads=1") {
  imgstore::LazyPool lazy(1);
  CHECK(lazy.get() == nullptr);
}
