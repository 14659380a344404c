// The one thread pool of the process. Work is split with ParallelFor; the
// calling thread takes part, so a pool of N threads runs N-1 workers.
//
// Decoding one token runs about 150 parallel sections, a few microseconds
// each, so waking workers must be cheap: a job is published by bumping an
// atomic generation counter that idle workers spin on for a short while
// before they sleep on it (futex). Only a worker that actually went to sleep
// costs a system call to wake.
//
// The caller never waits for a worker that has not started: it does its own
// share, then takes over every chunk nobody has claimed, closes the job, and
// waits only for the workers inside it. On a machine busy with other
// processes a descheduled worker then costs nothing instead of a time slice
// per parallel section.
#pragma once

#include <atomic>
#include <condition_variable>  // kept for code that relied on this header for it
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace glassbox {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t, int64_t, int)>;

  // n_threads <= 0: one per hardware thread. Each worker thread calls
  // on_worker_start (when set) once, before its first job: e.g. to size
  // thread-local scratch memory, so that no job has to allocate it (which
  // thread runs which part of a job varies). The constructor returns once
  // every worker has done so.
  explicit ThreadPool(int n_threads = 0, std::function<void()> on_worker_start = {});
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread_index) over [0, n) split into one
  // contiguous chunk per thread: chunk i is [i*per, (i+1)*per) and is always
  // passed index i, but when thread i has not started by the time the
  // caller is done with its own chunk, the caller runs it (as index i). No
  // two threads ever run with the same index at once. Returns when all
  // chunks are done. Not reentrant.
  void ParallelFor(int64_t n, const RangeFn& fn);

  // Calls fn(begin, end, thread_index) over [0, n) in chunks of `grain`
  // items (the last may be shorter) that the threads take in turn from a
  // shared counter, so a thread the OS delays does not hold up the others.
  // thread_index is the running thread's. Which thread gets which chunk
  // varies; results must not depend on it.
  void ParallelForDynamic(int64_t n, int64_t grain, const RangeFn& fn);

  // Memory that thread `thread` should bring into its cache (L2) once its
  // part of the next job is done, while it waits for the job after: the
  // first bytes of what it will read then. Applies to the next job only.
  // Between the parallel sections of a forward pass one thread runs the
  // serial steps while the others would idle, and the memory bus with them;
  // this lets them start on the next section's weights instead. A thread
  // stops as soon as another job starts. Addresses are only prefetched,
  // never read, so a hint that is stale by then is harmless.
  void PrefetchAfterNextJob(int thread, const void* data, int64_t bytes);
  // The hint set for the next job: (data, bytes), or (nullptr, 0).
  std::pair<const void*, int64_t> next_prefetch(int thread) const {
    return next_prefetch_.at(static_cast<size_t>(thread));
  }

 private:
  struct Job {
    const RangeFn* fn = nullptr;
    int64_t n = 0;
    int64_t grain = 0;  // 0: static split
    std::atomic<int64_t> next{0};
    std::unique_ptr<std::atomic<uint8_t>[]> claimed;  // static split: chunk taken
  };

  // A thread's prefetch hint. Atomic: a worker may still read the hint of
  // the previous job while the caller sets the next one.
  struct alignas(64) Prefetch {
    std::atomic<const char*> data{nullptr};
    std::atomic<int64_t> bytes{0};
  };
  template <typename Stop>
  static void prefetch(const Prefetch& hint, Stop stop);

  void drop_prefetch_hints();  // a job run inline uses none
  void run(int64_t n, int64_t grain, const RangeFn& fn);
  void run_static_chunk(int chunk);
  void work_on(int index);
  void worker(int index, const std::function<void()>& on_start);

  // state_: generation of the current job (high 32 bits), a closed flag and
  // the number of workers inside the job (low bits).
  static constexpr uint64_t kClosed = uint64_t{1} << 31;
  static constexpr uint64_t kInsideMask = kClosed - 1;

  int n_threads_;
  std::vector<std::thread> threads_;
  Job job_;
  uint32_t last_generation_ = 0;  // written by the calling thread only
  // Bumped once per job; idle workers wait for it to change.
  std::atomic<uint32_t> generation_{0};
  std::atomic<uint64_t> state_{0};
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int> workers_started_{0};
  // Hints set for the next job (caller only), and those of the job running
  // (read by each thread after its part).
  std::vector<std::pair<const void*, int64_t>> next_prefetch_;
  std::unique_ptr<Prefetch[]> prefetch_;
};

}  // namespace glassbox
