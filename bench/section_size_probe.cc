// How the size of a parallel section changes what a one-token product
// streams from memory (issue 8; bench/README.md, "Section sizes"): a packed
// Q4_K matrix of ~820 MB (1024 columns) multiplied with one token through
// kernels::gemv_rows16 in sections of 256 KiB, 1 MiB, 4 MiB and 400 MiB
// (one ThreadPool::ParallelFor each, its half to each of 2 threads, a join
// after each), next to a plain read of the same bytes in the same sections
// and to `glassbox bench`'s read probe, round after round (the memory of a
// virtual machine changes speed between runs). Run by hand:
//   build/bench/section_size_probe [rounds]
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "base/large_buffer.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "quantize/bench.h"
#include "tensor/fp16.h"

namespace {

using glassbox::DType;
using glassbox::TensorView;
namespace kernels = glassbox::kernels;

constexpr int64_t kCols = 1024;
constexpr int64_t kBlockBytes = 144;  // Q4_K
constexpr int64_t kRowBytes = kCols / 256 * kBlockBytes;

// Two 32-byte loads per 64-byte line, summed: the plain read.
__attribute__((target("avx2"))) uint64_t sum_lines(const uint8_t* p, int64_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a;
  for (int64_t i = 0; i + 64 <= bytes; i += 64) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
  }
  a = _mm256_add_epi64(a, b);
  return static_cast<uint64_t>(_mm256_extract_epi64(a, 0) + _mm256_extract_epi64(a, 3));
}

}  // namespace

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx2") || !kernels::have_fast_rows16(DType::Q4_K)) {
    std::printf("section_size_probe: needs AVX2 and a SIMD kernel for packed Q4_K; nothing to measure\n");
    return 0;
  }
  const int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 6;
  const int64_t rows = 800'000'000 / kRowBytes / 64 * 64;
  std::mt19937 rng(1);
  std::vector<uint8_t> w(static_cast<size_t>(rows * kRowBytes));
  for (auto& c : w) c = static_cast<uint8_t>(rng());
  for (size_t at = 0; at < w.size(); at += kBlockBytes) {  // moderate d and dmin; the rest random
    const uint16_t d = glassbox::f32_to_fp16(0.001f * static_cast<float>(1 + rng() % 100));
    const uint16_t dmin = glassbox::f32_to_fp16(0.0005f * static_cast<float>(rng() % 100));
    std::memcpy(&w[at], &d, 2);
    std::memcpy(&w[at + 2], &dmin, 2);
  }
  TensorView W = TensorView::matrix(DType::Q4_K, w.data(), kCols, rows, kRowBytes);
  glassbox::LargeBuffer packed(static_cast<size_t>(kernels::rows16_bytes(W)));  // huge pages, as the engine's
  kernels::attach_rows16(W, static_cast<uint8_t*>(packed.data()));
  std::vector<uint8_t>().swap(w);
  std::vector<float> x(kCols), y(static_cast<size_t>(rows));
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  kernels::Activations acts;
  acts.set(x.data(), kCols, 1, kCols);
  acts.prepare_for(DType::Q4_K, nullptr);

  glassbox::ThreadPool pool(2);
  glassbox::bench::ReadProbe probe(pool, 1ull << 30);
  const int64_t groups = rows / 16;
  const int64_t group_bytes = kernels::rows16_bytes(W) / groups;
  std::atomic<uint64_t> sink{0};
  // GB/s over whole sections of about section_bytes (groups of 16 rows).
  auto run = [&](int64_t section_bytes, bool read) {
    const int64_t per_section = std::max<int64_t>(2, section_bytes / group_bytes / 2 * 2);
    const auto t0 = std::chrono::steady_clock::now();
    int64_t done = 0;
    for (int64_t g0 = 0; g0 + per_section <= groups; g0 += per_section, done += per_section) {
      pool.ParallelFor(2, [&](int64_t, int64_t, int thread) {
        const int64_t a = g0 + thread * per_section / 2, b = a + per_section / 2;
        if (read) {
          sink += sum_lines(W.rows16 + a * group_bytes, (b - a) * group_bytes);
        } else {
          kernels::gemv_rows16(W.rows16_layout, W.rows16, kCols, 16 * a, 16 * b, acts, y.data());
        }
      });
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(done * group_bytes) / seconds / 1e9;
  };
  std::printf("packed Q4_K, %.0f MB, 2 threads; GB/s of a plain read / of the product, per section size\n",
              static_cast<double>(kernels::rows16_bytes(W)) / 1e6);
  for (int round = 0; round < rounds; ++round) {
    std::printf("probe %5.1f |", probe.measure(pool, 1).bytes_per_second / 1e9);
    for (int64_t kib : {int64_t{256}, int64_t{1024}, int64_t{4096}, int64_t{409600}})
      std::printf("  %6lld KiB: %5.1f / %5.1f", static_cast<long long>(kib), run(kib << 10, true),
                  run(kib << 10, false));
    std::printf("\n");
    std::fflush(stdout);
  }
  // The reads' sum, printed so that they are not optimized away.
  std::printf("(read checksum %llx)\n", static_cast<unsigned long long>(sink.load()));
  return 0;
}
