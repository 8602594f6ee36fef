#include "thread_pool.hpp"

#include <doctest/doctest.h>

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
