// Worker threads for the codecs (PNG encode and decode, zlib of HDF5 chunks), so a statement uses every core.
// A store's pool workers only run pure functions of their inputs; the calling thread keeps the store's own
// calls (HDF5, file creation, the commit) serialised. A sharded table's lanes (below) run whole shard
// transactions instead, one shard on one lane. Results come back through std::future, which also carries an
// exception back to the caller, where the store turns it into the statement's error.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "args.hpp"

namespace imgstore {

// The machine's cores (at least 1): the `threads` argument's default.
unsigned default_threads();

// Every store module's `threads` argument: 1..256, default default_threads(). 1 does all work on the calling
// thread, as before the argument existed.
unsigned threads_argument(const Args& args);

class ThreadPool {
 public:
  explicit ThreadPool(unsigned workers);
  // Finishes the queued tasks, then joins. Never destroy a pool in a child forked while it existed (LazyPool
  // does not): its workers did not come along.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  std::size_t size() const { return workers_.size(); }
  // False in a forked child: submitted work would never run.
  bool usable() const;

  // Runs `task` on a worker; the future holds its result or its exception.
  template <typename Task>
  std::future<std::invoke_result_t<Task>> submit(Task&& task) {
    using Result = std::invoke_result_t<Task>;
    // packaged_task is move-only and std::function needs a copyable callable: hold it by shared_ptr.
    auto job = std::make_shared<std::packaged_task<Result()>>(std::forward<Task>(task));
    std::future<Result> result = job->get_future();
    enqueue([job] { (*job)(); });
    return result;
  }

 private:
  friend struct ForkQuiesce;
  void enqueue(std::function<void()> job);
  void work(std::stop_token stop);

  const pid_t owner_;  // the process whose workers these are
  std::mutex mutex_;
  std::condition_variable_any ready_;
  std::condition_variable started_cv_;  // a worker started
  std::deque<std::function<void()>> queue_;
  // Workers between taking a job and having destroyed it (its closure, its result's buffers). fork() waits for
  // 0 (thread_pool.cpp, ForkQuiesce), so that no worker is inside the allocator when the process forks.
  unsigned running_ = 0;
  unsigned started_ = 0;  // workers that have begun to run
  std::vector<std::jthread> workers_;  // last member: joined first, while the queue still exists
};

// A store's pool: none with threads=1; otherwise made at first use by the process that uses it, so a store
// inherited through fork() (a PyTorch DataLoader worker, Python's multiprocessing) makes its own.
class LazyPool {
 public:
  // `least`: the fewest threads worth a pool (a lane of Lanes is one thread).
  explicit LazyPool(unsigned threads, unsigned least = 2) : threads_(threads), least_(least) {}
  ~LazyPool();
  LazyPool(const LazyPool&) = delete;
  LazyPool& operator=(const LazyPool&) = delete;
  unsigned threads() const { return threads_; }
  ThreadPool* get();  // nullptr when threads <= 1

 private:
  void forget_inherited();
  const unsigned threads_;
  const unsigned least_;
  std::unique_ptr<ThreadPool> pool_;
};

// Work pinned to threads: `lanes` one-thread pools, each made at first use (as LazyPool). Everything sent for one
// key runs in order on one thread, which LMDB needs (a write transaction ends on the thread that began it), so a
// sharded table's shards can each be written and committed on a worker. No lanes when `lanes` <= 1.
//
// A lane's thread runs at a slightly lower priority (nice 3, a weight of about half) than the thread that feeds
// it: with as many lanes as cores, fair sharing gave the feeding thread two thirds of a core and it became the
// bottleneck; at nice 3 it gets about a whole one. (Not lower: the feeding thread also waits for the lanes, and
// other programs' threads would then starve them.)
class Lanes {
 public:
  explicit Lanes(unsigned lanes);
  std::size_t size() const { return lanes_.size(); }
  ThreadPool* get(std::size_t key);

 private:
  std::vector<std::unique_ptr<LazyPool>> lanes_;
  std::vector<ThreadPool*> started_;  // the lane's pool whose thread was given its priority
};

}  // namespace imgstore
