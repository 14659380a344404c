// Numeric kernels over typed weight rows. Every kernel has a plain scalar
// reference (namespace `scalar`) and SIMD variants (AVX2, AVX-512) chosen at
// run time from the CPU's features; tests compare each against the reference.
#pragma once

#include <cstdint>
#include <string_view>

#include "tensor/dtype.h"
#include "tensor/tensor_view.h"

namespace glassbox {
class ThreadPool;
}

namespace glassbox::kernels {

// Scalar references: straightforward code that follows ggml's block layouts.
namespace scalar {
// Dequantizes `n` elements (a multiple of the type's block size) to float.
void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);
// Dot product of a stored weight row with float activations, summed in float
// after dequantizing each block (F32 activations, no activation quantization).
float dot(DType type, const uint8_t* row, const float* x, int64_t n);
}  // namespace scalar

// Dispatched versions (best variant for this CPU).
void dequantize_row(DType type, const uint8_t* src, float* dst, int64_t n);
float dot(DType type, const uint8_t* row, const float* x, int64_t n);

// Y[t][r] = dot(W.row(r), X[t]) for t < n_tokens, r < W.rows().
// X is [n_tokens][W.cols()] row-major, Y is [n_tokens][W.rows()].
// Work is split over rows with the pool (nullptr: run on the calling thread).
// For n_tokens > 1 each tile of rows is dequantized once into a per-thread
// F32 buffer and reused for every token; results equal per-token dot up to
// float rounding. Throws glassbox::Error for an unsupported type, a row
// length that is not a multiple of the block size, or a too-small row_stride.
void matmul(const TensorView& W, const float* X, int64_t n_tokens, float* Y, ThreadPool* pool);

// Name of the instruction set the dispatcher picked ("avx512", "avx2", "scalar").
std::string_view active_isa();
// Forces a variant (for tests and benchmarks); returns false if unavailable.
// "auto" restores the automatic choice. Process-wide: do not call while other
// threads run kernels.
bool force_isa(std::string_view name);

}  // namespace glassbox::kernels
