// AVX-512 with VNNI: the fast-path kernels of fast_avx512.inc built with
// vpdpbusd (one instruction per 64 byte products instead of three or five);
// the exact path and attention are the plain AVX-512 ones.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstdlib>
#include <cstring>

#include "kernels/block_layouts.h"
#include "kernels/kernels_internal.h"

#define GLASSBOX_VNNI 1
#include "kernels/fast_avx512.inc"

namespace glassbox::kernels::detail {
constexpr IsaKernels kAvx512VnniKernels = {"avx512vnni",
                                           avx512::dequantize_row,
                                           avx512::dot,
                                           avx512::gemm_f32,
                                           quantize_acts_fast,
                                           lane_layout_fast,
                                           prepare_tile_lanes,
                                           gemm_tile_fast,
                                           gemv_fast,
                                           avx512::attention,
                                           avx512::silu_mul,
                                           avx512::f32_to_f16,
                                           avx512::f16_to_f32,
                                           gemv_q4_k_rows16,
                                           gemv_q6_k_rows16,
                                           Rows16Layout::Q6_K_LowHigh,
                                           reference::gemv_q8_0_rows16,  // its stored-row Q8_0 kernel: no packed copy
                                           reference::gemv_q4_0_rows16,  // not measured on AVX-512: no packed copy
                                           avx512::rms_norm,
                                           avx2::softmax_sums,
                                           avx2::find_above};
}  // namespace glassbox::kernels::detail
