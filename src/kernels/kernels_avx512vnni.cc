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
constexpr IsaKernels kAvx512VnniKernels = avx512_table("avx512vnni");
}  // namespace glassbox::kernels::detail
