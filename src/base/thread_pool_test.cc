#include "base/thread_pool.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace glassbox {

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {1, 2, 3, 7, 100, 1001}) {
    std::vector<std::atomic<int>> hits(n);
    pool.ParallelFor(n, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

// Each worker runs the start hook once, on its own thread, before the
// constructor returns: thread-local memory it sizes there is in place
// before any job, whichever thread runs which part of it.
TEST(ThreadPool, WorkerStartHookRunsOnEveryWorkerBeforeTheFirstJob) {
  for (int n : {1, 2, 5}) {
    std::mutex mu;
    std::vector<std::thread::id> started;
    {
      ThreadPool pool(n, [&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a worker that starts late
        std::lock_guard<std::mutex> lock(mu);
        started.push_back(std::this_thread::get_id());
      });
      std::vector<std::thread::id> seen;
      {
        std::lock_guard<std::mutex> lock(mu);
        seen = started;
      }
      ASSERT_EQ(seen.size(), static_cast<size_t>(n - 1)) << n << " threads";
      for (size_t i = 0; i < seen.size(); ++i) {
        EXPECT_NE(seen[i], std::this_thread::get_id()) << "the hook runs on the workers, not the caller";
        for (size_t j = 0; j < i; ++j) EXPECT_NE(seen[i], seen[j]) << "one call per worker";
      }
      std::atomic<int64_t> sum{0};
      pool.ParallelFor(100, [&](int64_t b, int64_t e, int) { sum += e - b; });
      EXPECT_EQ(sum.load(), 100);
    }
    EXPECT_EQ(started.size(), static_cast<size_t>(n - 1)) << "no second call";
  }
}

TEST(ThreadPool, ReusableManyTimes) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 2000; ++rep) pool.ParallelFor(10, [&](int64_t b, int64_t e, int) { sum += e - b; });
  EXPECT_EQ(sum.load(), 20000);
}

}  // namespace glassbox

namespace glassbox {

TEST(ThreadPool, DynamicCoversEveryIndexExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t grain : {1, 4, 64}) {
    for (int64_t n : {1, 2, 5, 64, 65, 1001}) {
      std::vector<std::atomic<int>> hits(n);
      std::atomic<int> bad_thread{0};
      pool.ParallelForDynamic(n, grain, [&](int64_t b, int64_t e, int thread) {
        if (thread < 0 || thread >= 3 || e - b > grain) ++bad_thread;
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
      EXPECT_EQ(bad_thread.load(), 0);
      for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[i].load(), 1) << "n=" << n << " grain=" << grain << " i=" << i;
    }
  }
}

// Jobs separated by pauses longer than the spin time: the workers go to
// sleep in between and must be woken every time.
TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(2);
  std::atomic<int64_t> sum{0};
  for (int rep = 0; rep < 20; ++rep) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    pool.ParallelFor(4, [&](int64_t b, int64_t e, int) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the caller may sleep too
      sum += e - b;
    });
  }
  EXPECT_EQ(sum.load(), 80);
}

TEST(ThreadPool, SingleThreadRunsInline) {
  ThreadPool pool(1);
  int calls = 0;
  pool.ParallelForDynamic(100, 7, [&](int64_t b, int64_t e, int t) {
    EXPECT_EQ(t, 0);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 100);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
}

}  // namespace glassbox

namespace glassbox {

// Per-thread scratch indexed by thread_index stays safe: no index is ever
// used by two threads at the same time, also when the caller takes over the
// chunk of a worker that has not started.
TEST(ThreadPool, NoIndexRunsTwiceAtOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> busy(4);
  std::atomic<int> clashes{0};
  std::atomic<int> cpu_spin{0};
  auto fn = [&](int64_t, int64_t, int t) {
    if (busy[t].fetch_add(1) != 0) ++clashes;
    for (int i = 0; i < 200; ++i) cpu_spin.fetch_add(1, std::memory_order_relaxed);
    busy[t].fetch_sub(1);
  };
  for (int rep = 0; rep < 3000; ++rep) {
    if (rep % 2 == 0) {
      pool.ParallelFor(4, fn);
    } else {
      pool.ParallelForDynamic(16, 1, fn);
    }
  }
  EXPECT_EQ(clashes.load(), 0);
}

}  // namespace glassbox

namespace glassbox {

// Prefetch hints are only ever prefetched: one pointing at memory that is
// gone by the time the job ends, or far larger than memory, must neither
// fault nor hold up the jobs after it (a thread stops at the next job).
TEST(ThreadPool, PrefetchHintsNeverFaultOrHoldUpTheNextJob) {
  ThreadPool pool(3);
  std::atomic<int64_t> sum{0};
  auto add = [&](int64_t b, int64_t e, int) { sum += e - b; };
  // A mapping that is gone: every page of it faults if read.
  void* gone = mmap(nullptr, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(gone, MAP_FAILED);
  ASSERT_EQ(munmap(gone, 1 << 20), 0);
  for (int rep = 0; rep < 200; ++rep) {
    pool.PrefetchAfterNextJob(0, gone, 1 << 20);
    pool.PrefetchAfterNextJob(1, reinterpret_cast<const void*>(uintptr_t{64}), int64_t{1} << 40);
    pool.PrefetchAfterNextJob(2, &sum, int64_t{1} << 40);
    pool.ParallelFor(30, add);
  }
  EXPECT_EQ(sum.load(), 200 * 30);
}

// A hint applies to the next job only, also when that job runs inline on
// the caller; out-of-range threads and negative sizes are ignored.
TEST(ThreadPool, PrefetchHintsApplyToTheNextJobOnly) {
  ThreadPool pool(2);
  int data[16] = {};
  pool.PrefetchAfterNextJob(1, data, sizeof data);
  EXPECT_EQ(pool.next_prefetch(1), std::make_pair(static_cast<const void*>(data), int64_t{sizeof data}));
  pool.ParallelFor(2, [](int64_t, int64_t, int) {});
  EXPECT_EQ(pool.next_prefetch(1).first, nullptr);
  pool.PrefetchAfterNextJob(1, data, sizeof data);
  pool.ParallelFor(1, [](int64_t, int64_t, int) {});  // inline
  EXPECT_EQ(pool.next_prefetch(1).second, 0);
  pool.PrefetchAfterNextJob(0, data, -5);
  EXPECT_EQ(pool.next_prefetch(0).second, 0);
  pool.PrefetchAfterNextJob(2, data, 64);  // no thread 2
  pool.PrefetchAfterNextJob(-1, data, 64);
  EXPECT_EQ(pool.next_prefetch(0).second, 0);
  EXPECT_EQ(pool.next_prefetch(1).second, 0);
}

}  // namespace glassbox
