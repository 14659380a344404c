// Prototype measurement for the next Q4_K decode kernel (issue 8): Q4_K rows
// repacked in groups of 16, one 32-bit lane per row, so that each vpdpbusd
// takes a broadcast of four activations (a load, no shuffle) and the
// sub-block scales and minimums are plain vector loads of 16 pre-unpacked
// bytes. The engine does not use this layout yet; this program shows what it
// would gain:
//   1. the repacked product equals a scalar dequantize-and-dot of the
//      original ggml blocks (same 8-bit activations), or it exits 1;
//   2. its speed with the matrix in L2 (compute bound), one thread;
//   3. its speed over 800 MB from DRAM, 1 and 2 threads, against the
//      engine's current kernel on the original layout (kernels::matmul_fast,
//      the decode path) and a plain AVX-512 read (the memory bound).
// Run by hand: build/bench/q4k_rows16_probe (needs AVX-512 VNNI; says so and
// exits 0 elsewhere). Results: bench/README.md, "Where generation time goes".
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "base/thread_pool.h"
#include "bench/q4k_rows16.h"
#include "kernels/kernels.h"
#include "tensor/fp16.h"

namespace {

using namespace glassbox::q4k_rows16;

float fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return glassbox::fp16_to_f32(h);
}

// ggml's get_scale_min_k4.
void scale_min(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

void dequantize_block(const uint8_t* block, float* y) {
  const float d = fp16(block), dmin = fp16(block + 2);
  const uint8_t* scales = block + 4;
  const uint8_t* qs = block + 16;
  for (int g = 0; g < 4; ++g) {
    uint8_t s1, m1, s2, m2;
    scale_min(2 * g, scales, s1, m1);
    scale_min(2 * g + 1, scales, s2, m2);
    for (int l = 0; l < 32; ++l) {
      y[64 * g + l] = d * s1 * (qs[32 * g + l] & 0xF) - dmin * m1;
      y[64 * g + 32 + l] = d * s2 * (qs[32 * g + l] >> 4) - dmin * m2;
    }
  }
}

// Rows [0, 16) of w (row_bytes apart) -> n_blocks packed blocks.
void repack_group(const uint8_t* w, int64_t row_bytes, int n_blocks, uint8_t* out) {
  for (int b = 0; b < n_blocks; ++b) {
    uint8_t* o = out + static_cast<int64_t>(b) * kPackedBytes;
    for (int r = 0; r < kGroupRows; ++r) {
      const uint8_t* block = w + r * row_bytes + static_cast<int64_t>(b) * kBlockBytes;
      std::memcpy(o + 2 * r, block, 2);
      std::memcpy(o + 32 + 2 * r, block + 2, 2);
      for (int j = 0; j < 8; ++j) scale_min(j, block + 4, o[kScalesAt + 16 * j + r], o[kMinsAt + 16 * j + r]);
      for (int g = 0; g < 4; ++g)
        for (int k = 0; k < 8; ++k) std::memcpy(o + kQsAt + (g * 8 + k) * 64 + 4 * r, block + 16 + 32 * g + 4 * k, 4);
    }
  }
}

volatile uint64_t g_read_sink;  // keeps the plain reads from being optimised away

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main() {
  if (!__builtin_cpu_supports("avx512vnni") || !__builtin_cpu_supports("avx512bw")) {
    std::printf("q4k_rows16_probe: this CPU has no AVX-512 VNNI; nothing to measure\n");
    return 0;
  }
  const int cols = 1024, n_blocks = cols / kBlockValues, rows = 2048;
  const int64_t row_bytes = static_cast<int64_t>(n_blocks) * kBlockBytes;
  const int64_t group_bytes = static_cast<int64_t>(n_blocks) * kPackedBytes;
  std::mt19937 rng(1);
  std::vector<uint8_t> w(static_cast<size_t>(rows * row_bytes));
  for (auto& c : w) c = static_cast<uint8_t>(rng());
  for (int r = 0; r < rows; ++r)
    for (int b = 0; b < n_blocks; ++b) {
      uint8_t* block = &w[static_cast<size_t>(r * row_bytes + b * kBlockBytes)];
      const uint16_t d = glassbox::f32_to_fp16(0.001f * static_cast<float>(1 + rng() % 100));
      const uint16_t dmin = glassbox::f32_to_fp16(0.0005f * static_cast<float>(rng() % 100));
      std::memcpy(block, &d, 2);
      std::memcpy(block + 2, &dmin, 2);
    }
  std::normal_distribution<float> normal;
  std::vector<float> xf(cols);
  for (float& v : xf) v = normal(rng);
  Activations x{std::vector<int8_t>(cols), std::vector<float>(n_blocks), std::vector<int32_t>(8 * n_blocks)};
  for (int b = 0; b < n_blocks; ++b) {
    float amax = 0;
    for (int i = 0; i < kBlockValues; ++i) amax = std::max(amax, std::fabs(xf[kBlockValues * b + i]));
    x.scale[b] = amax / 127;
    for (int i = 0; i < kBlockValues; ++i)
      x.q[kBlockValues * b + i] = static_cast<int8_t>(std::lround(xf[kBlockValues * b + i] / x.scale[b]));
    for (int j = 0; j < 8; ++j) {
      int s = 0;
      for (int i = 0; i < 32; ++i) s += x.q[kBlockValues * b + 32 * j + i];
      x.sums[8 * b + j] = s;
    }
  }
  std::vector<uint8_t> packed(static_cast<size_t>(rows / kGroupRows * group_bytes));
  for (int g = 0; g < rows / kGroupRows; ++g)
    repack_group(&w[static_cast<size_t>(g * kGroupRows * row_bytes)], row_bytes, n_blocks, &packed[g * group_bytes]);

  // 1. Against the scalar reference (double sums of the dequantized weights
  //    times the same 8-bit activations).
  std::vector<float> y(rows), deq(cols);
  for (int g = 0; g < rows / kGroupRows; ++g) gemv_group(&packed[g * group_bytes], n_blocks, x, &y[kGroupRows * g]);
  double worst = 0;
  for (int r = 0; r < rows; ++r) {
    for (int b = 0; b < n_blocks; ++b)
      dequantize_block(&w[static_cast<size_t>(r * row_bytes + b * kBlockBytes)], &deq[kBlockValues * b]);
    double ref = 0;
    for (int i = 0; i < cols; ++i) ref += static_cast<double>(deq[i]) * x.q[i] * x.scale[i / kBlockValues];
    worst = std::max(worst, std::fabs(y[r] - ref) / (std::fabs(ref) + 1e-3));
  }
  std::printf("largest relative difference from the scalar reference: %.2e (tolerance 1e-4)\n", worst);
  if (!(worst <= 1e-4)) return 1;

  // 2. Matrix in L2, one thread.
  const auto t0 = std::chrono::steady_clock::now();
  int calls = 0;
  while (seconds_since(t0) < 1.0) {
    for (int g = 0; g < rows / kGroupRows; ++g) gemv_group(&packed[g * group_bytes], n_blocks, x, &y[kGroupRows * g]);
    ++calls;
  }
  const double l2 = seconds_since(t0);
  std::printf("in L2 (%d x %d, %.2f MB of Q4_K), 1 thread: %.1f GB/s of the original Q4_K bytes, %.1f us a product\n",
              rows, cols, static_cast<double>(rows * row_bytes) / 1e6,
              static_cast<double>(calls) * static_cast<double>(rows * row_bytes) / l2 / 1e9, l2 / calls * 1e6);

  // 3. 800 MB from DRAM: packed groups, and the same rows in the original
  //    layout for the engine's kernel; each thread its contiguous share.
  const int64_t big_groups = static_cast<int64_t>(800e6) / group_bytes;
  std::vector<uint8_t> big(static_cast<size_t>(big_groups * group_bytes));
  std::vector<uint8_t> big_original(static_cast<size_t>(big_groups * kGroupRows * row_bytes));
  const int64_t set_groups = rows / kGroupRows;
  for (int64_t g = 0; g < big_groups; ++g) {
    std::memcpy(&big[static_cast<size_t>(g * group_bytes)], &packed[(g % set_groups) * group_bytes],
                static_cast<size_t>(group_bytes));
    std::memcpy(&big_original[static_cast<size_t>(g * kGroupRows * row_bytes)],
                &w[static_cast<size_t>((g % set_groups) * kGroupRows * row_bytes)],
                static_cast<size_t>(kGroupRows * row_bytes));
  }
  glassbox::TensorView W;
  W.type = glassbox::DType::Q4_K;
  W.data = big_original.data();
  W.ne[0] = cols;
  W.ne[1] = big_groups * kGroupRows;
  W.row_stride = row_bytes;
  glassbox::kernels::Activations acts;
  std::vector<float> y_big(static_cast<size_t>(big_groups * kGroupRows));
  for (int threads : {1, 2}) {
    glassbox::ThreadPool pool(threads);
    for (int what = 0; what < 3; ++what) {
      double best = 0;
      const double bytes = static_cast<double>(what == 1 ? big_original.size() : big.size());
      for (int rep = 0; rep < 5; ++rep) {
        const auto s0 = std::chrono::steady_clock::now();
        if (what == 1) {
          acts.set(xf.data(), cols, 1, cols);
          glassbox::kernels::matmul_fast(W, acts, y_big.data(), threads > 1 ? &pool : nullptr);
        } else {
          pool.ParallelFor(threads, [&](int64_t t0, int64_t t1, int) {
            for (int64_t t = t0; t < t1; ++t) {
              const int64_t g0 = big_groups * t / threads, g1 = big_groups * (t + 1) / threads;
              if (what == 2) {
                g_read_sink = plain_read(&big[static_cast<size_t>(g0 * group_bytes)], (g1 - g0) * group_bytes);
              } else {
                for (int64_t g = g0; g < g1; ++g)
                  gemv_group(&big[static_cast<size_t>(g * group_bytes)], n_blocks, x,
                             &y_big[static_cast<size_t>(g * kGroupRows)]);
              }
            }
          });
        }
        best = std::max(best, bytes / seconds_since(s0) / 1e9);
      }
      static const char* const kWhat[] = {"repacked Q4_K product", "engine's Q4_K product (original layout)",
                                          "plain AVX-512 read"};
      std::printf("from DRAM (800 MB), %d thread%s, %s: %.1f GB/s (best of 5)\n", threads, threads > 1 ? "s" : "",
                  kWhat[what], best);
    }
  }
  return 0;
}
