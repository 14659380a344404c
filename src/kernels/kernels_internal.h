// Internal interface between the dispatcher (kernels.cc) and the per-ISA
// kernel files. Each ISA file is compiled with its own instruction-set flags
// and exposes one constant table; nothing in it runs before the dispatcher
// has checked the CPU (a table of function pointers is constant-initialized
// data, not code).
#pragma once

#include <cstdint>
#include <string_view>

#include "tensor/dtype.h"

namespace glassbox::kernels::detail {

// Arguments are validated by the public entry points before these run:
// `type` is one of the supported types and `n` a multiple of its block size.
using DequantizeFn = void (*)(DType type, const uint8_t* src, float* dst, int64_t n);
using DotFn = float (*)(DType type, const uint8_t* row, const float* x, int64_t n);
// Dense F32 tile product: Y[t * ldy + r] = sum_k W[r * ldw + k] * X[t * ldx + k]
// for r < n_rows, t < n_tokens, k < n.
using GemmF32Fn = void (*)(const float* W, int64_t ldw, int64_t n_rows, const float* X, int64_t ldx,
                           int64_t n_tokens, int64_t n, float* Y, int64_t ldy);

struct IsaKernels {
  std::string_view name;
  DequantizeFn dequantize_row;
  DotFn dot;
  GemmF32Fn gemm_f32;
};

extern const IsaKernels kScalarKernels;
extern const IsaKernels kAvx2Kernels;    // needs AVX2, FMA, F16C
extern const IsaKernels kAvx512Kernels;  // needs AVX-512 F, BW, VL, DQ

// Throws glassbox::Error unless `type` is computable and `n` is a
// non-negative multiple of its block size.
void check_row_args(DType type, int64_t n);

}  // namespace glassbox::kernels::detail
