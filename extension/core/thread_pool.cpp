#include "thread_pool.hpp"

#include <unistd.h>

#include <algorithm>

namespace imgstore {

unsigned default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

unsigned threads_argument(const Args& args) {
  return static_cast<unsigned>(args.integer("threads", 1, 256, default_threads()));
}

ThreadPool::ThreadPool(unsigned workers) : owner_(::getpid()) {
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this](std::stop_token stop) { work(stop); });
}

bool ThreadPool::usable() const { return owner_ == ::getpid(); }

ThreadPool::~ThreadPool() {
  for (auto& worker : workers_) worker.request_stop();
  ready_.notify_all();
  workers_.clear();  // joins
}

void ThreadPool::enqueue(std::function<void()> job) {
  {
    const std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void ThreadPool::work(std::stop_token stop) {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      // Queued work is finished even after a stop is requested: a future someone waits for is always set.
      if (!ready_.wait(lock, stop, [&] { return !queue_.empty(); })) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();  // a packaged_task: exceptions land in its future
  }
}

LazyPool::~LazyPool() { forget_inherited(); }

void LazyPool::forget_inherited() {
  // Deliberately leaked: its workers did not come along, so joining them would wait for ever, and even its
  // condition variable cannot be destroyed (glibc waits for the parent's waiters to leave it).
  if (pool_ && !pool_->usable()) static_cast<void>(pool_.release());
}

ThreadPool* LazyPool::get() {
  if (threads_ <= 1) return nullptr;
  forget_inherited();
  if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_);
  return pool_.get();
}

}  // namespace imgstore
