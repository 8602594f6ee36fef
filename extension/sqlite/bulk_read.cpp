// The bulk reader (bulk_read.h) and its two SQL functions, imgstore_bulk_handle(table [, schema]) and
// imgstore_extension_path(). Rows come from the same Store cursors as a statement's (Store::scan, lookup), so
// the isolation contract and the checksum checks are the statement's own; only the copy differs: straight
// into the caller's array.

#include "bulk_read.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "checksum.hpp"
#include "function_common.hpp"
#include "store.hpp"
#include "thread_pool.hpp"
#include "vtab.hpp"

SQLITE_EXTENSION_INIT3

namespace imgstore {

namespace {

void copy_message(const std::string& message, char* err, std::int64_t err_size) noexcept {
  if (err == nullptr || err_size <= 0) return;
  const auto n = std::min<std::size_t>(message.size(), static_cast<std::size_t>(err_size - 1));
  std::memcpy(err, message.data(), n);
  err[n] = '\0';
}

// Runs read(store, table) on the table of `handle`; every exception becomes a result code and a message.
template <typename Read>
int bulk_call(std::int64_t handle, char* err, std::int64_t err_size, Read&& read) noexcept {
  try {
    const bool found = with_store_table(handle, [&](Store& store, const std::string& table) { read(store, table); });
    if (!found) {
      copy_message("imgstore: no connected store table has bulk handle " + std::to_string(handle) +
                       " (its table was dropped or its connection closed; ask imgstore_bulk_handle() again)",
                   err, err_size);
      return SQLITE_MISUSE;
    }
    return SQLITE_OK;
  } catch (...) {
    const SqliteError error = current_sqlite_error();
    copy_message(error.code == SQLITE_NOMEM ? "imgstore: out of memory" : error.message, err, err_size);
    return error.code;
  }
}

// Interleaved pixels to planes, one pass, the channel count known to the compiler so that it vectorises the
// strided loads (with AVX2's byte shuffles where the CPU has them: the function is cloned and picked at load
// time). RGB from 32x32x3 took about 1 us an image as three strided passes, half a batch's read.
template <std::size_t C>
inline void to_planes(const std::uint8_t* src, std::size_t pixels, std::uint8_t* dst) {
  for (std::size_t p = 0; p < pixels; ++p) {
    for (std::size_t c = 0; c < C; ++c) dst[c * pixels + p] = src[p * C + c];
  }
}
#define IMGSTORE_PLANES(C)                                                                                       \
  __attribute__((target_clones("avx2", "default"))) void to_planes##C(const std::uint8_t* src, std::size_t pixels, \
                                                                      std::uint8_t* dst) {                       \
    to_planes<C>(src, pixels, dst);                                                                              \
  }
IMGSTORE_PLANES(2)
IMGSTORE_PLANES(3)
IMGSTORE_PLANES(4)
#undef IMGSTORE_PLANES

// One image into out (H*W*C bytes): as stored (HWC), or as planes (CHW) for torchvision.
void copy_image(std::span<const std::uint8_t> hwc, const Shape& shape, bool chw, std::uint8_t* out) {
  const std::size_t channels = shape.channels;
  if (!chw || channels == 1) {
    std::memcpy(out, hwc.data(), hwc.size());
    return;
  }
  const std::size_t plane = static_cast<std::size_t>(shape.height) * shape.width;
  switch (channels) {  // a Shape has 1 to 4 channels
    case 2: return to_planes2(hwc.data(), plane, out);
    case 3: return to_planes3(hwc.data(), plane, out);
    default: return to_planes4(hwc.data(), plane, out);
  }
}


// A copied image failed its check: the store's own read of it reports the damage in its words (the file, the
// stored and the computed checksums).
[[noreturn]] void throw_damaged(Store& store, const std::string& table, std::int64_t id) {
  auto again = store.lookup({id});
  if (!again->at_end()) (void)again->pixels();
  throw Error("table " + table + ": image " + std::to_string(id) + " is damaged: its checksum does not match",
              ErrorKind::corrupt);
}

// Checks copied images on a thread of its own while the caller copies the next ones. Each image is hashed in
// the output, just written and still in cache, so the caller pays only the copy: the store's bytes are read
// from memory once, as a plain copy reads them. (The hash checks the very bytes the caller gets.) Between
// blocks, the thread also maps in the output's pages ahead of the caller (MADV_POPULATE_WRITE: a fresh numpy
// array's pages are first zeroed by the kernel, as long as the copy itself), so the caller finds them ready.
class BackgroundCheck {
 public:
  explicit BackgroundCheck(std::size_t image_bytes, std::uint8_t* output = nullptr, std::size_t output_bytes = 0)
      : bytes_(image_bytes) {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto first = (reinterpret_cast<std::uintptr_t>(output) + page - 1) / page * page;
    const auto last = (reinterpret_cast<std::uintptr_t>(output) + output_bytes) / page * page;
    if (output != nullptr && last > first) {
      ahead_ = first;
      ahead_end_ = last;
      worker_ = std::jthread([this] { run(); });
    }
  }
  ~BackgroundCheck() { close(); }
  BackgroundCheck(const BackgroundCheck&) = delete;
  BackgroundCheck& operator=(const BackgroundCheck&) = delete;

  void add(const std::uint8_t* pixels, std::int64_t id, const PixelCheck& check) {
    if (check.kind == PixelCheck::Kind::none) return;
    block_.push_back({pixels, id, check});
    if (block_.size() == kBlock) flush();
  }

  // Waits for every check: the id of the first image that failed, if any.
  std::optional<std::int64_t> finish() {
    flush();
    close();
    return failed_;
  }

 private:
  static constexpr std::size_t kBlock = 256;  // about 1 MiB of 32x32x3 images: hashed while still in L2
  static constexpr std::uintptr_t kAheadStep = std::uintptr_t{2} << 20;  // output mapped 2 MiB at a time
  struct Entry {
    const std::uint8_t* pixels;
    std::int64_t id;
    PixelCheck check;
  };

  void flush() {
    if (block_.empty()) return;
    if (!worker_.joinable()) worker_ = std::jthread([this] { run(); });
    {
      const std::lock_guard lock(mutex_);
      queue_.push_back(std::move(block_));
    }
    ready_.notify_one();
    block_ = {};
    block_.reserve(kBlock);
  }

  void close() noexcept {
    {
      const std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_one();
    if (worker_.joinable()) worker_.join();
  }

  void run() noexcept {
    for (;;) {
      std::vector<Entry> block;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return closed_ || !queue_.empty() || ahead_ < ahead_end_; });
        if (queue_.empty()) {
          if (closed_ || ahead_ >= ahead_end_) return;
          const std::uintptr_t from = ahead_;
          ahead_ = std::min(ahead_end_, ahead_ + kAheadStep);
          lock.unlock();
          // Contents are kept (an existing page is left as it is): only the mapping is made.
          if (::madvise(reinterpret_cast<void*>(from), ahead_ - from, MADV_POPULATE_WRITE) != 0) {
            const std::lock_guard stop(mutex_);
            ahead_ = ahead_end_;  // an older kernel (before 5.14): the caller faults its pages in itself
          }
          continue;
        }
        block = std::move(queue_.front());
        queue_.pop_front();
      }
      for (const Entry& e : block) {
        if (!failed_ && failed_check(e.check, e.id, {e.pixels, bytes_})) failed_ = e.id;
      }
    }
  }

  const std::size_t bytes_;
  std::vector<Entry> block_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::vector<Entry>> queue_;
  bool closed_ = false;
  std::uintptr_t ahead_ = 0;      // the output's pages not yet mapped in: [ahead_, ahead_end_)
  std::uintptr_t ahead_end_ = 0;
  std::optional<std::int64_t> failed_;  // written by the worker, read after it is joined
  std::jthread worker_;                 // last: joined before the members it uses go
};

// Copies one row's pixels to out: checked here (CHW: the copy is not the stored bytes), or in the background.
// Images of many sizes do not fit one array of rows: Python reads a store of shape 'any' through SQL.
void require_one_shape(const Store& store, const std::string& table) {
  if (!store.shape().any) return;
  throw Error("table " + table + ": its images differ in size (shape 'any'); expected a store of one shape for a "
              "copy into one array (read a list of images with SELECT)",
              ErrorKind::mismatch);
}

void copy_row(Cursor& row, const Shape& shape, bool chw, std::uint8_t* out, BackgroundCheck* checks) {
  if (chw || checks == nullptr) {
    copy_image(row.pixels(), shape, chw, out);
    return;
  }
  PixelCheck check;
  const std::span<const std::uint8_t> px = row.pixels_unchecked(check);
  std::memcpy(out, px.data(), px.size());
  checks->add(out, row.id(), check);
}

// Where a lookup's rows go: the positions asked for each id (sorted pairs id, position).
struct Scatter {
  const Shape& shape;
  bool chw;
  std::int64_t* labels;
  std::uint8_t* pixels;
  std::uint8_t* found;
};

// Copies each row of `rows` (ascending ids) to every position that asked for its id.
void scatter_rows(Cursor& rows, std::span<const std::pair<std::int64_t, std::size_t>> wanted, const Scatter& out,
                  BackgroundCheck* checks) {
  const std::size_t bytes = out.shape.bytes();
  auto next = wanted.begin();
  for (; !rows.at_end(); rows.next()) {
    const std::int64_t id = rows.id();
    next = std::lower_bound(next, wanted.end(), std::pair{id, std::size_t{0}});
    if (next == wanted.end() || next->first != id) continue;
    const std::int64_t label = out.labels != nullptr ? rows.label() : 0;
    std::uint8_t* const first = out.pixels != nullptr ? out.pixels + next->second * bytes : nullptr;
    if (first != nullptr) copy_row(rows, out.shape, out.chw, first, checks);
    for (auto at = next; at != wanted.end() && at->first == id; ++at) {
      if (out.labels != nullptr) out.labels[at->second] = label;
      if (first != nullptr && at != next) std::memcpy(out.pixels + at->second * bytes, first, bytes);
      if (out.found != nullptr) out.found[at->second] = 1;
    }
  }
}

// The bulk reader's workers (one per core; none on one core): made at first use by the process that uses it.
ThreadPool* bulk_pool() {
  static std::mutex mutex;
  static LazyPool pool(default_threads());
  const std::lock_guard lock(mutex);
  return pool.get();
}

// A lookup of at least this many ids is split over two threads when it can be: waking the worker costs about
// 50 us on these machines (a get of 32 random ids took 100 us split, 43 us not), about 90 random lmdb reads.
constexpr std::size_t kSplitRows = 128;

// Below this many images a thread costs more than it saves (measured: a batch of 256 random reads took twice
// as long with one).
constexpr std::int64_t kBackgroundRows = 2048;

void fn_bulk_handle(sqlite3_context* ctx, int argc, sqlite3_value** argv) noexcept {
  guarded(ctx, [&] {
    const std::string name = text_arg(argv[0], "imgstore_bulk_handle", "table");
    const std::string schema = argc > 1 ? text_arg(argv[1], "imgstore_bulk_handle", "schema") : std::string();
    const std::int64_t handle = store_table_handle(sqlite3_context_db_handle(ctx), schema, name);
    if (handle == 0) {
      throw Error("imgstore_bulk_handle(): no store table named '" + name + "'" +
                      (schema.empty() ? std::string() : " in schema '" + schema + "'") +
                      "; expected a table made with CREATE VIRTUAL TABLE ... USING lmdb, hdf5, png_dir or imgstore",
                  ErrorKind::generic);
    }
    sqlite3_result_int64(ctx, handle);
  });
}

// The file this library was loaded from, so a caller can open the same loaded copy (ctypes.CDLL(path)).
void fn_extension_path(sqlite3_context* ctx, int, sqlite3_value**) noexcept {
  guarded(ctx, [&] {
    Dl_info info{};
    if (dladdr(reinterpret_cast<void*>(&imgstore_bulk_scan), &info) == 0 || info.dli_fname == nullptr) {
      throw Error("imgstore_extension_path(): the loader does not know this library's file", ErrorKind::generic);
    }
    sqlite3_result_text(ctx, info.dli_fname, -1, SQLITE_TRANSIENT);
  });
}

}  // namespace

int register_bulk_functions(sqlite3* db) {
  constexpr int flags = SQLITE_UTF8 | SQLITE_DIRECTONLY;
  int rc = sqlite3_create_function_v2(db, "imgstore_bulk_handle", 1, flags, nullptr, fn_bulk_handle, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "imgstore_bulk_handle", 2, flags, nullptr, fn_bulk_handle, nullptr, nullptr, nullptr);
  }
  if (rc == SQLITE_OK) {
    rc = sqlite3_create_function_v2(db, "imgstore_extension_path", 0, flags, nullptr, fn_extension_path, nullptr, nullptr,
                                    nullptr);
  }
  return rc;
}

}  // namespace imgstore

using imgstore::bulk_call;
using imgstore::Cursor;
using imgstore::Store;

extern "C" int imgstore_bulk_get(int64_t handle, const int64_t* ids, int64_t n, int32_t chw, int64_t* labels,
                                 uint8_t* pixels, uint8_t* found, char* err, int64_t err_size) {
  return bulk_call(handle, err, err_size, [&](Store& store, const std::string& table) {
    if (pixels != nullptr) imgstore::require_one_shape(store, table);
    const auto count = static_cast<std::size_t>(std::max<int64_t>(n, 0));
    const std::size_t bytes = store.shape().bytes();
    // Read in ascending id order (each backend's fast order), then scatter to the positions asked.
    std::vector<std::pair<std::int64_t, std::size_t>> wanted;
    wanted.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      if (found != nullptr) found[i] = 0;
      wanted.emplace_back(ids[i], i);
    }
    std::sort(wanted.begin(), wanted.end());
    std::vector<std::int64_t> keys;
    keys.reserve(count);
    for (const auto& [id, position] : wanted) {
      if (id >= 0 && (keys.empty() || keys.back() != id)) keys.push_back(id);
    }
    const imgstore::Scatter out{store.shape(), chw != 0, labels, pixels, found};
    if (pixels != nullptr && n < imgstore::kBackgroundRows && keys.size() >= imgstore::kSplitRows) {
      if (imgstore::ThreadPool* pool = imgstore::bulk_pool()) {
        // Two halves on two threads when their cursors read one committed state: a batch of random reads
        // waits on memory, and two cores wait on twice as much of it at once.
        const std::size_t half = keys.size() / 2;
        const std::int64_t split = keys[half];
        auto low = store.lookup(std::vector<std::int64_t>(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(half)));
        auto high = store.lookup(std::vector<std::int64_t>(keys.begin() + static_cast<std::ptrdiff_t>(half), keys.end()));
        if (low->same_snapshot(*high)) {
          const auto mid = std::lower_bound(wanted.begin(), wanted.end(), std::pair{split, std::size_t{0}});
          auto other = pool->submit([&] { imgstore::scatter_rows(*high, {mid, wanted.end()}, out, nullptr); });
          struct Join {  // the worker writes into the caller's arrays: never return before it is done
            std::future<void>& f;
            ~Join() {
              if (f.valid()) f.wait();
            }
          } const join{other};
          imgstore::scatter_rows(*low, {wanted.begin(), mid}, out, nullptr);
          other.get();
          return;
        }
      }
    }
    std::optional<imgstore::BackgroundCheck> checks;
    if (pixels != nullptr && n >= imgstore::kBackgroundRows) checks.emplace(bytes);
    imgstore::scatter_rows(*store.lookup(std::move(keys)), wanted, out, checks ? &*checks : nullptr);
    if (checks) {
      if (const auto failed = checks->finish()) imgstore::throw_damaged(store, table, *failed);
    }
  });
}

extern "C" int imgstore_bulk_scan(int64_t handle, int64_t lo, int64_t hi, int64_t capacity, int32_t chw, int64_t* ids,
                                  int64_t* labels, uint8_t* pixels, int64_t* rows, int64_t* total, char* err,
                                  int64_t err_size) {
  if (rows != nullptr) *rows = 0;
  if (total != nullptr) *total = 0;
  return bulk_call(handle, err, err_size, [&](Store& store, const std::string& table) {
    if (pixels != nullptr) imgstore::require_one_shape(store, table);
    const std::size_t bytes = store.shape().bytes();
    std::optional<imgstore::BackgroundCheck> checks;
    if (pixels != nullptr && capacity >= imgstore::kBackgroundRows) {
      checks.emplace(bytes, pixels, static_cast<std::size_t>(capacity) * bytes);
    }
    std::int64_t written = 0;
    std::int64_t seen = 0;
    if (lo <= hi && hi >= 0) {
      const auto cursor = store.scan({std::max<int64_t>(lo, 0), hi});
      std::vector<imgstore::RowCopy> copied;
      while (!cursor->at_end()) {
        if (written < capacity && pixels != nullptr && chw == 0) {
          // Runs of rows straight into the output (Cursor::copy_rows), checked in the background or here.
          std::uint8_t* const out = pixels + static_cast<std::size_t>(written) * bytes;
          const std::size_t n = cursor->copy_rows(out, static_cast<std::size_t>(capacity - written), copied);
          for (std::size_t k = 0; k < n; ++k) {
            const imgstore::RowCopy& row = copied[k];
            if (ids != nullptr) ids[static_cast<std::size_t>(written) + k] = row.id;
            if (labels != nullptr) labels[static_cast<std::size_t>(written) + k] = row.label;
            std::uint8_t* const px = out + k * bytes;
            if (checks) {
              checks->add(px, row.id, row.check);
            } else if (imgstore::failed_check(row.check, row.id, {px, bytes})) {
              imgstore::throw_damaged(store, table, row.id);
            }
          }
          written += static_cast<int64_t>(n);
          seen += static_cast<int64_t>(n);
          continue;
        }
        if (seen < capacity) {  // ids and labels only, or CHW planes; past capacity only counted
          if (ids != nullptr) ids[written] = cursor->id();
          if (labels != nullptr) labels[written] = cursor->label();
          if (pixels != nullptr) {
            imgstore::copy_row(*cursor, store.shape(), chw != 0, pixels + static_cast<std::size_t>(written) * bytes, nullptr);
          }
          ++written;
        }
        ++seen;
        cursor->next();
      }
    }
    if (checks) {
      if (const auto failed = checks->finish()) imgstore::throw_damaged(store, table, *failed);
    }
    if (rows != nullptr) *rows = written;
    if (total != nullptr) *total = seen;
  });
}
