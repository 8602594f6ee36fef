#include "thread_pool.hpp"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <set>

namespace imgstore {

namespace {
constexpr int kLaneNice = 3;
}  // namespace

unsigned default_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

unsigned threads_argument(const Args& args) {
  return static_cast<unsigned>(args.integer("threads", 1, 256, default_threads()));
}

// A worker wakes the caller as soon as a job's result is set, then frees the job (its closure, buffers it
// held). A caller that forks at once (a DataLoader starting its workers after a statement) can fork while that
// free holds an allocator lock, which the child inherits locked. glibc's malloc takes its own locks around
// fork; other allocators do not: under GCC 12's AddressSanitizer the child's own pool threads hung at start
// (tests/process_test.py, fork-after schedules). So fork() waits until no pool's worker runs a job (at most
// the jobs in flight) and holds every pool so across the fork.
struct ForkQuiesce {
  // Never destroyed: a pool that is itself a static (the bulk reader's) is destroyed at exit after them
  // otherwise (statics go in the reverse order of their construction, and this list is made after the pool
  // that first joins it), and its destructor's remove() freed the list's nodes a second time.
  template <typename T>
  class Immortal {
   public:
    Immortal() { ::new (static_cast<void*>(storage_)) T(); }
    T& get() { return *std::launder(reinterpret_cast<T*>(storage_)); }

   private:
    alignas(T) unsigned char storage_[sizeof(T)];
  };
  static std::mutex& mutex() {
    static Immortal<std::mutex> m;
    return m.get();
  }
  static std::set<ThreadPool*>& pools() {
    static Immortal<std::set<ThreadPool*>> p;
    return p.get();
  }
  static void add(ThreadPool* pool) {
    static std::once_flag once;
    std::call_once(once, [] { ::pthread_atfork(prepare, resume, resume); });
    const std::lock_guard lock(mutex());
    pools().insert(pool);
  }
  static void remove(ThreadPool* pool) {
    const std::lock_guard lock(mutex());
    pools().erase(pool);
  }
  // All pools locked at once, or none: a sharded store's job waits for its shards' jobs on other pools, so
  // holding one pool while waiting for another could wait for ever. Nothing is held between attempts, so a job
  // may even make a new pool meanwhile.
  static void prepare() {
    for (;;) {
      mutex().lock();
      const ThreadPool* busy = nullptr;
      for (ThreadPool* p : pools()) {
        p->mutex_.lock();
        if (p->running_ != 0) {
          busy = p;
          break;
        }
      }
      if (busy == nullptr) return;  // every pool locked and idle: held across the fork
      for (ThreadPool* p : pools()) {
        p->mutex_.unlock();
        if (p == busy) break;
      }
      mutex().unlock();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  // In the parent and the child alike (the child's copies are locked by its only thread, this one).
  static void resume() {
    for (ThreadPool* p : pools()) p->mutex_.unlock();
    mutex().unlock();
  }
};

ThreadPool::ThreadPool(unsigned workers) : owner_(::getpid()) {
  workers_.reserve(workers);
  for (unsigned i = 0; i < workers; ++i) workers_.emplace_back([this](std::stop_token stop) { work(stop); });
  // Returns once every worker runs: a thread still starting allocates (its stack bounds, its allocator cache),
  // and a fork then, which ForkQuiesce cannot see, copied a lock it held (under ASan the child's own workers
  // then hung at start: tests/process_test.py, fork-after schedules).
  {
    std::unique_lock lock(mutex_);
    started_cv_.wait(lock, [&] { return started_ == workers; });
  }
  ForkQuiesce::add(this);
}

bool ThreadPool::usable() const { return owner_ == ::getpid(); }

ThreadPool::~ThreadPool() {
  for (auto& worker : workers_) worker.request_stop();
  ready_.notify_all();
  workers_.clear();  // joins
  ForkQuiesce::remove(this);  // after the joins: a fork meanwhile waits for the last jobs too
}

void ThreadPool::enqueue(std::function<void()> job) {
  {
    const std::lock_guard lock(mutex_);
    queue_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void ThreadPool::work(std::stop_token stop) {
  {
    const std::lock_guard lock(mutex_);
    ++started_;
  }
  started_cv_.notify_all();
  for (;;) {
    {
      std::function<void()> job;
      {
        std::unique_lock lock(mutex_);
        // Queued work is finished even after a stop is requested: a future someone waits for is always set.
        if (!ready_.wait(lock, stop, [&] { return !queue_.empty(); })) return;
        job = std::move(queue_.front());
        queue_.pop_front();
        ++running_;
      }
      job();  // a packaged_task: exceptions land in its future
    }  // the job destroyed
    const std::lock_guard lock(mutex_);
    --running_;
  }
}

LazyPool::~LazyPool() { forget_inherited(); }

void LazyPool::forget_inherited() {
  // Deliberately leaked: its workers did not come along, so joining them would wait for ever, and even its
  // condition variable cannot be destroyed (glibc waits for the parent's waiters to leave it).
  if (pool_ && !pool_->usable()) static_cast<void>(pool_.release());
}

ThreadPool* LazyPool::get() {
  if (threads_ < least_ || threads_ == 0) return nullptr;
  forget_inherited();
  if (!pool_) pool_ = std::make_unique<ThreadPool>(threads_);
  return pool_.get();
}

Lanes::Lanes(unsigned lanes) {
  if (lanes <= 1) return;
  for (unsigned i = 0; i < lanes; ++i) lanes_.push_back(std::make_unique<LazyPool>(1, 1));
  started_.resize(lanes, nullptr);
}

ThreadPool* Lanes::get(std::size_t key) {
  if (lanes_.empty()) return nullptr;
  const std::size_t lane = key % lanes_.size();
  ThreadPool* pool = lanes_[lane]->get();
  if (pool != started_[lane]) {  // a new thread (first use, or after fork)
    started_[lane] = pool;
    // Linux's nice is per thread; failing to lower it only costs speed.
    pool->submit([] { static_cast<void>(setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kLaneNice)); });
  }
  return pool;
}

}  // namespace imgstore
