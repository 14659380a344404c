// Measures the packed Q4_K and Q6_K layouts of the one-token products (issue 8;
// kernels::pack_rows16, block_layouts.h) against the original layout,
// through the engine's own kernels::matmul_fast on the same rows:
//   1. with the matrix in L2 (compute bound), one thread;
//   2. over 800 MB from DRAM, 1 and 2 threads, next to the read probe of
//      `glassbox bench` (the memory bound).
// Both layouts' results are compared first (the tests check each against
// the scalar reference). Run by hand: build/bench/q4k_rows16_probe. Results:
// bench/README.md, "Where generation time goes".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
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

int64_t block_bytes(DType type) { return type == DType::Q4_K ? 144 : 210; }

// Random Q4_K or Q6_K rows with moderate scales.
std::vector<uint8_t> random_rows(DType type, int64_t rows, std::mt19937& rng) {
  const int64_t bb = block_bytes(type), row_bytes = kCols / 256 * bb;
  std::vector<uint8_t> w(static_cast<size_t>(rows * row_bytes));
  for (auto& c : w) c = static_cast<uint8_t>(rng());
  for (int64_t at = 0; at < static_cast<int64_t>(w.size()); at += bb) {
    const uint16_t d = glassbox::f32_to_fp16(0.001f * static_cast<float>(1 + rng() % 100));
    if (type == DType::Q4_K) {
      const uint16_t dmin = glassbox::f32_to_fp16(0.0005f * static_cast<float>(rng() % 100));
      std::memcpy(&w[static_cast<size_t>(at)], &d, 2);
      std::memcpy(&w[static_cast<size_t>(at) + 2], &dmin, 2);
    } else {
      std::memcpy(&w[static_cast<size_t>(at + bb - 2)], &d, 2);  // d last; the int8 scales may be anything
    }
  }
  return w;
}

TensorView view(DType type, const std::vector<uint8_t>& w, int64_t rows) {
  return TensorView::matrix(type, w.data(), kCols, rows, kCols / 256 * block_bytes(type));
}

// Best rate of `runs` products, in GB/s of the original Q4_K bytes.
double best_rate(const TensorView& W, kernels::Activations& acts, std::vector<float>& y, glassbox::ThreadPool* pool,
                 int runs, double min_seconds) {
  double best = 0;
  for (int run = 0; run < runs; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t products = 0;
    double seconds = 0;
    do {
      kernels::matmul_fast(W, acts, y.data(), pool);
      ++products;
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (seconds < min_seconds);
    best = std::max(best, static_cast<double>(products * W.rows() * W.row_stride) / seconds / 1e9);
  }
  return best;
}

}  // namespace

int main() {
  if (!kernels::have_fast_rows16(DType::Q4_K) || !kernels::have_fast_rows16(DType::Q6_K)) {
    std::printf("q4k_rows16_probe: no SIMD kernel for packed Q4_K/Q6_K on this CPU; nothing to measure\n");
    return 0;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> x(kCols);
  for (float& v : x) v = normal(rng);
  kernels::Activations acts;
  acts.set(x.data(), kCols, 1, kCols);

  struct Case {
    DType type;
    const char* where;
    int64_t rows;
    int threads;
    int runs;
    double min_seconds;
  };
  auto dram_rows = [](DType type) { return 800'000'000 / (kCols / 256 * block_bytes(type)) / 16 * 16; };
  const Case cases[] = {{DType::Q4_K, "in L2 (1536 rows, 0.9 MB)", 1536, 1, 3, 0.5},
                        {DType::Q4_K, "from DRAM (800 MB)", dram_rows(DType::Q4_K), 1, 3, 0.0},
                        {DType::Q4_K, "from DRAM (800 MB)", dram_rows(DType::Q4_K), 2, 3, 0.0},
                        {DType::Q6_K, "in L2 (1024 rows, 0.9 MB)", 1024, 1, 3, 0.5},
                        {DType::Q6_K, "from DRAM (800 MB)", dram_rows(DType::Q6_K), 1, 3, 0.0},
                        {DType::Q6_K, "from DRAM (800 MB)", dram_rows(DType::Q6_K), 2, 3, 0.0}};
  // One read probe for the whole run: a freed gigabyte would stall the
  // cases timed after it (see bench::ReadProbe).
  glassbox::ThreadPool probe_pool(2);
  glassbox::bench::ReadProbe probe(probe_pool, 1ull << 30);
  for (const Case& c : cases) {
    const std::vector<uint8_t> w = random_rows(c.type, c.rows, rng);
    TensorView plain = view(c.type, w, c.rows);
    // In huge pages, like the engine's packed matrices and the read probe.
    glassbox::LargeBuffer packed(static_cast<size_t>(kernels::rows16_bytes(plain)));
    TensorView with_packed = plain;
    kernels::attach_rows16(with_packed, static_cast<uint8_t*>(packed.data()));
    glassbox::ThreadPool pool(c.threads);
    glassbox::ThreadPool* p = c.threads > 1 ? &pool : nullptr;

    std::vector<float> y_plain(static_cast<size_t>(c.rows)), y_packed(y_plain.size());
    kernels::matmul_fast(plain, acts, y_plain.data(), p);
    kernels::matmul_fast(with_packed, acts, y_packed.data(), p);
    // Float sums in another order: compared against the largest output.
    double worst = 0, largest = 0;
    for (size_t r = 0; r < y_plain.size(); ++r) {
      worst = std::max(worst, std::fabs(static_cast<double>(y_plain[r]) - y_packed[r]));
      largest = std::max(largest, std::fabs(static_cast<double>(y_plain[r])));
    }
    if (!(worst <= 1e-5 * largest)) {
      std::printf("packed and original layouts disagree: %.3g against outputs up to %.3g\n", worst, largest);
      return 1;
    }
    const double rate_plain = best_rate(plain, acts, y_plain, p, c.runs, c.min_seconds);
    const double rate_packed = best_rate(with_packed, acts, y_packed, p, c.runs, c.min_seconds);
    std::printf("%s %s, %d thread%s: original layout %.1f GB/s, packed %.1f GB/s",
                c.type == DType::Q4_K ? "Q4_K" : "Q6_K", c.where, c.threads, c.threads > 1 ? "s" : "", rate_plain,
                rate_packed);
    if (c.min_seconds == 0) {
      const auto read = probe.measure(pool, 5);
      std::printf(", plain read %.1f GB/s (%.0f%% / %.0f%%)", read.bytes_per_second / 1e9,
                  100 * rate_plain * 1e9 / read.bytes_per_second, 100 * rate_packed * 1e9 / read.bytes_per_second);
    }
    std::printf("\n");
  }
  return 0;
}
