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

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::work_on(Job& job, int index) {
  const RangeFn& fn = *job.fn;
  if (job.grain == 0) {
    const int64_t per = (job.n + n_threads_ - 1) / n_threads_;
    const int64_t begin = std::min(job.n, per * index);
    const int64_t end = std::min(job.n, begin + per);
    if (begin < end) fn(begin, end, index);
    return;
  }
  for (;;) {
    const int64_t begin = job.next.fetch_add(job.grain, std::memory_order_relaxed);
    if (begin >= job.n) return;
    fn(begin, std::min(job.n, begin + job.grain), index);
  }
}

void ThreadPool::run(int64_t n, int64_t grain, const RangeFn& fn) {
  job_.fn = &fn;
  job_.n = n;
  job_.grain = grain;
  job_.next.store(0, std::memory_order_relaxed);
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  // Publishing: the seq_cst increment orders the job fields before it, and
  // against the workers' sleeping_workers_ increments (see worker()).
  generation_.fetch_add(1);
  if (sleeping_workers_.load() > 0) generation_.notify_all();

  work_on(job_, 0);

  if (!spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
    caller_sleeping_.store(true);
    for (int p = pending_.load(); p != 0; p = pending_.load()) pending_.wait(p);
    caller_sleeping_.store(false);
  }
  job_.fn = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n, 0);
    return;
  }
  run(n, 0, fn);
}

void ThreadPool::ParallelForDynamic(int64_t n, int64_t grain, const RangeFn& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  if (n_threads_ == 1 || n <= grain) {
    fn(0, n, 0);
    return;
  }
  run(n, grain, fn);
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;  // the generation before the first job (threads may start late)
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
    seen = generation_.load(std::memory_order_acquire);
    work_on(job_, index);
    if (pending_.fetch_sub(1) == 1 && caller_sleeping_.load()) pending_.notify_one();
  }
}

}  // namespace glassbox
