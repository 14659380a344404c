// Run-time dispatch between the kernel variants, argument checks, and the
// threaded matrix product.
#include "kernels/kernels.h"

#include <cpuid.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/kernels_internal.h"

namespace glassbox::kernels {
namespace {

using detail::IsaKernels;

// F16C is read from CPUID directly: clang's __builtin_cpu_supports does not
// know it. (Its usability follows from AVX's, which the builtin checks.)
bool cpu_has_f16c() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (ecx & bit_F16C) != 0;
}

bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
}

// libgcc / compiler-rt only report AVX-512 features when the OS saves the
// AVX-512 register state (XGETBV), so this is safe to trust.
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}

const IsaKernels* best_available() {
  if (cpu_has_avx512()) return &detail::kAvx512Kernels;
  if (cpu_has_avx2()) return &detail::kAvx2Kernels;
  return &detail::kScalarKernels;
}

std::atomic<const IsaKernels*> g_active{nullptr};

const IsaKernels& active() {
  const IsaKernels* k = g_active.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = best_available();
    g_active.store(k, std::memory_order_release);
  }
  return *k;
}

bool is_computable(DType type) {
  switch (type) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q4_0:
    case DType::Q5_0:
    case DType::Q8_0:
    case DType::Q4_K:
    case DType::Q6_K: return true;
    default: return false;
  }
}

// Rows per tile in the multi-token product: the dequantized tile should stay
// in L2 (well under 1 MiB) while the tokens stream past it. A multiple of 4
// suits the 4-row register blocking of the SIMD tile kernels.
int64_t tile_rows_for(int64_t n_cols) {
  constexpr int64_t kTileBytes = 192 * 1024;
  const int64_t rows = kTileBytes / (std::max<int64_t>(n_cols, 1) * 4);
  return std::clamp<int64_t>(rows / 4 * 4, 4, 64);
}

}  // namespace

namespace detail {

void check_row_args(DType type, int64_t n) {
  const auto tr = dtype_traits(static_cast<uint32_t>(type));
  if (!tr || !is_computable(type)) {
    throw Error("kernels: unsupported tensor type " +
                (tr ? std::string(tr->name) : "id " + std::to_string(static_cast<uint32_t>(type))));
  }
  if (n < 0 || n % tr->block_elems != 0) {
    throw Error("kernels: row length " + std::to_string(n) + " is not a multiple of the " +
                std::string(tr->name) + " block size " + std::to_string(tr->block_elems));
  }
}

}  // namespace detail

void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n) {
  detail::check_row_args(type, n);
  active().dequantize_row(type, src, dst, n);
}

float dot(DType type, const uint8_t* row, const float* x, int64_t n) {
  detail::check_row_args(type, n);
  return active().dot(type, row, x, n);
}

void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool* pool) {
  if (!W) throw Error("matmul: weight tensor has no data");
  const int64_t n = W.cols();
  const int64_t rows = W.rows();
  detail::check_row_args(W.type, n);
  if (rows < 0 || n_tokens < 0) throw Error("matmul: negative shape");
  if (W.row_stride < row_bytes(W.type, n)) {
    throw Error("matmul: row stride " + std::to_string(W.row_stride) + " is smaller than a " +
                std::string(dtype_name(W.type)) + " row of " + std::to_string(n) + " elements");
  }
  if (rows == 0 || n_tokens == 0) return;
  // The work lambdas capture a single pointer so that std::function keeps
  // them in its small buffer instead of allocating on every call.
  struct Job {
    const IsaKernels* isa;
    const TensorView* W;
    const float* X;
    float* Y;
    int64_t n, rows, n_tokens, tile_rows;
  };
  // Tiles no larger than an even share of the rows, so every thread of the
  // pool gets work even for small matrices.
  const int64_t threads = pool != nullptr ? pool->size() : 1;
  const int64_t share = ((rows + threads - 1) / threads + 3) / 4 * 4;
  const int64_t tile_rows = std::min(tile_rows_for(n), share);
  const Job job{&active(), &W, X, Y, n, rows, n_tokens, tile_rows};
  const Job* j = &job;
  auto run = [pool](int64_t count, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (pool != nullptr) {
      pool->ParallelFor(count, fn);
    } else {
      fn(0, count, 0);
    }
  };

  if (n_tokens == 1) {
    run(rows, [j](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) j->Y[r] = j->isa->dot(j->W->type, j->W->row(r), j->X, j->n);
    });
    return;
  }

  // Prompt processing: each tile of rows is dequantized once into a
  // per-thread buffer and multiplied with every token. The buffer lives as
  // long as the (pool) thread, so steady-state calls do not allocate.
  const int64_t n_tiles = (rows + job.tile_rows - 1) / job.tile_rows;
  run(n_tiles, [j](int64_t begin, int64_t end, int) {
    thread_local std::vector<float> tile;
    const size_t needed = static_cast<size_t>(j->tile_rows * j->n);
    if (tile.size() < needed) tile.resize(needed);
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * j->tile_rows;
      const int64_t nr = std::min(j->tile_rows, j->rows - r0);
      for (int64_t r = 0; r < nr; ++r) {
        j->isa->dequantize_row(j->W->type, j->W->row(r0 + r), tile.data() + r * j->n, j->n);
      }
      j->isa->gemm_f32(tile.data(), j->n, nr, j->X, j->n, j->n_tokens, j->n, j->Y + r0, j->rows);
    }
  });
}

std::string_view active_isa() { return active().name; }

bool force_isa(std::string_view name) {
  const IsaKernels* k = nullptr;
  if (name == "scalar") {
    k = &detail::kScalarKernels;
  } else if (name == "avx2" && cpu_has_avx2()) {
    k = &detail::kAvx2Kernels;
  } else if (name == "avx512" && cpu_has_avx512()) {
    k = &detail::kAvx512Kernels;
  } else if (name == "auto") {
    k = best_available();
  }
  if (k == nullptr) return false;
  g_active.store(k, std::memory_order_release);
  return true;
}

}  // namespace glassbox::kernels
