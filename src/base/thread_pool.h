// The one thread pool of the process. Work is split with ParallelFor; the
// calling thread takes part, so a pool of N threads runs N-1 workers.
//
// Decoding one token runs about 150 parallel sections, a few microseconds
// each, so waking workers must be cheap: a job is published by bumping an
// atomic generation counter that idle workers spin on for a short while
// before they sleep on it (futex), and completion is an atomic countdown the
// caller spins on the same way. Only a worker (or caller) that actually went
// to sleep costs a system call to wake.
#pragma once

#include <atomic>
#include <condition_variable>  // kept for code that relied on this header for it
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace glassbox {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t, int64_t, int)>;

  // n_threads <= 0: one per hardware thread.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over [0, n) split into one contiguous
  // chunk per thread (thread i always gets the i-th chunk); returns when all
  // chunks are done. Not reentrant.
  void ParallelFor(int64_t n, const RangeFn& fn);

  // Calls fn(begin, end, thread_index) over [0, n) in chunks of `grain`
  // items (the last may be shorter) that the threads take in turn from a
  // shared counter, so a thread the OS delays does not hold up the others.
  // Which thread gets which chunk varies; results must not depend on it.
  void ParallelForDynamic(int64_t n, int64_t grain, const RangeFn& fn);

 private:
  struct Job {
    const RangeFn* fn = nullptr;
    int64_t n = 0;
    int64_t grain = 0;  // 0: static split
    std::atomic<int64_t> next{0};
  };

  void run(int64_t n, int64_t grain, const RangeFn& fn);
  void work_on(Job& job, int index);
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> threads_;
  Job job_;
  // Bumped once per job; workers wait for it to change. Odd values are never
  // special: only inequality with the last seen value matters.
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};       // workers still running the current job
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
};

}  // namespace glassbox
