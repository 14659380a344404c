#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

namespace glassbox {
namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle thread spins before it sleeps. Long enough to bridge the
// serial bits between the parallel sections of a forward pass (and a token's
// sampling), short enough not to burn a core for long when the pool is idle.
constexpr auto kSpinTime = std::chrono::microseconds(200);

// Spins until `pred` holds or the spin time is over; true if it holds.
template <typename Pred>
bool spin_until(Pred pred) {
  if (pred()) return true;
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      cpu_relax();
      if (pred()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads, std::function<void()> on_worker_start) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  job_.claimed = std::make_unique<std::atomic<uint8_t>[]>(static_cast<size_t>(n_threads_));
  next_prefetch_.assign(static_cast<size_t>(n_threads_), {nullptr, 0});
  prefetch_ = std::make_unique<Prefetch[]>(static_cast<size_t>(n_threads_));
  for (int i = 1; i < n_threads_; ++i)
    threads_.emplace_back([this, i, on_worker_start] { worker(i, on_worker_start); });
  if (on_worker_start) {
    for (int started; (started = workers_started_.load()) < n_threads_ - 1;) workers_started_.wait(started);
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_static_chunk(int chunk) {
  const int64_t per = (job_.n + n_threads_ - 1) / n_threads_;
  const int64_t begin = std::min(job_.n, per * chunk);
  const int64_t end = std::min(job_.n, begin + per);
  if (begin < end) (*job_.fn)(begin, end, chunk);
}

void ThreadPool::work_on(int index) {
  if (job_.grain == 0) {
    if (job_.claimed[index].exchange(1, std::memory_order_acq_rel) == 0) run_static_chunk(index);
    return;
  }
  for (;;) {
    const int64_t begin = job_.next.fetch_add(job_.grain, std::memory_order_relaxed);
    if (begin >= job_.n) return;
    (*job_.fn)(begin, std::min(job_.n, begin + job_.grain), index);
  }
}

void ThreadPool::drop_prefetch_hints() {
  for (auto& next : next_prefetch_) next = {nullptr, 0};
}

void ThreadPool::PrefetchAfterNextJob(int thread, const void* data, int64_t bytes) {
  if (thread < 0 || thread >= n_threads_) return;
  next_prefetch_[static_cast<size_t>(thread)] = {data, std::max<int64_t>(bytes, 0)};
}

// Prefetches the hint into L2 a few lines at a time until it is done or
// stop() holds. The prefetches queue on the core's line-fill buffers, so
// each step takes about as long as memory needs for its lines: checking
// between steps keeps the delay to a new job under a microsecond.
template <typename Stop>
void ThreadPool::prefetch(const Prefetch& hint, Stop stop) {
  // Addresses as integers: a hint may lie past any live object by now.
  const auto data = reinterpret_cast<uintptr_t>(hint.data.load(std::memory_order_relaxed));
  const int64_t bytes = hint.bytes.load(std::memory_order_relaxed);
  if (data == 0) return;
  constexpr int64_t kStep = 512;
  for (int64_t at = 0; at < bytes; at += kStep) {
    if (stop()) return;
    for (int64_t line = 0; line < kStep; line += 64)
      __builtin_prefetch(reinterpret_cast<const void*>(data + static_cast<uintptr_t>(at + line)), 0, 2);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, const RangeFn& fn) {
  for (int i = 0; i < n_threads_; ++i) {
    auto& next = next_prefetch_[static_cast<size_t>(i)];
    prefetch_[i].data.store(static_cast<const char*>(next.first), std::memory_order_relaxed);
    prefetch_[i].bytes.store(next.second, std::memory_order_relaxed);
    next = {nullptr, 0};
  }
  job_.fn = &fn;
  job_.n = n;
  job_.grain = grain;
  job_.next.store(0, std::memory_order_relaxed);
  for (int i = 0; i < n_threads_; ++i) job_.claimed[i].store(0, std::memory_order_relaxed);
  const uint32_t g = ++last_generation_;
  state_.store(static_cast<uint64_t>(g) << 32, std::memory_order_release);
  // Publishing: the seq_cst store orders the job before it, and against the
  // workers' sleeping_workers_ increments (see worker()).
  generation_.store(g);
  if (sleeping_workers_.load() > 0) generation_.notify_all();

  work_on(0);
  if (grain == 0) {
    // Chunks of threads that have not started yet.
    for (int i = 1; i < n_threads_; ++i) {
      if (job_.claimed[i].exchange(1, std::memory_order_acq_rel) == 0) run_static_chunk(i);
    }
  }
  // Every chunk is taken. While workers are still inside, this thread's
  // hint; then close the job to latecomers and wait for them.
  prefetch(prefetch_[0], [this] { return (state_.load(std::memory_order_relaxed) & kInsideMask) == 0; });
  const uint64_t before = state_.fetch_or(kClosed);
  if ((before & kInsideMask) != 0 &&
      !spin_until([this] { return (state_.load(std::memory_order_acquire) & kInsideMask) == 0; })) {
    caller_sleeping_.store(true);
    for (uint64_t s = state_.load(); (s & kInsideMask) != 0; s = state_.load()) state_.wait(s);
    caller_sleeping_.store(false);
  }
  job_.fn = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn) {
  if (n_threads_ == 1 || n <= 1) {
    drop_prefetch_hints();
    if (n > 0) fn(0, n, 0);
    return;
  }
  run(n, 0, fn);
}

void ThreadPool::ParallelForDynamic(int64_t n, int64_t grain, const RangeFn& fn) {
  grain = std::max<int64_t>(grain, 1);
  if (n_threads_ == 1 || n <= grain) {
    drop_prefetch_hints();
    if (n > 0) fn(0, n, 0);
    return;
  }
  run(n, grain, fn);
}

void ThreadPool::worker(int index, const std::function<void()>& on_start) {
  uint32_t seen = 0;  // the generation before the first job (threads may start late)
  if (on_start) {
    on_start();
    workers_started_.fetch_add(1);
    workers_started_.notify_all();
  }
  for (;;) {
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      // Announce the sleep before checking once more: run() bumps the
      // generation before it reads sleeping_workers_, so either it sees this
      // increment and notifies, or wait() sees the new generation.
      sleeping_workers_.fetch_add(1);
      generation_.wait(seen);
      sleeping_workers_.fetch_sub(1);
    }
    if (stop_.load()) return;
    const uint32_t g = generation_.load(std::memory_order_acquire);
    seen = g;
    // Enter the job unless the caller has moved past it or closed it.
    uint64_t s = state_.load(std::memory_order_acquire);
    bool entered = false;
    while ((s >> 32) == g && (s & kClosed) == 0) {
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) {
        entered = true;
        break;
      }
    }
    if (!entered) continue;
    work_on(index);
    const uint64_t after = state_.fetch_sub(1) - 1;
    if ((after & kInsideMask) == 0 && (after & kClosed) != 0 && caller_sleeping_.load()) state_.notify_one();
    prefetch(prefetch_[index], [this, g] { return generation_.load(std::memory_order_relaxed) != g; });
  }
}

}  // namespace glassbox
