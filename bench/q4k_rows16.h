// The repacked Q4_K layout of bench/q4k_rows16_probe.cc: constants, 8-bit
// activations, and the AVX-512 VNNI product (q4k_rows16_kernel.cc, compiled
// with AVX-512 flags; call it only where the CPU has them).
#pragma once

#include <cstdint>
#include <vector>

namespace glassbox::q4k_rows16 {

constexpr int kBlockValues = 256;  // ggml Q4_K: d, dmin (fp16), scales[12], qs[128]
constexpr int kBlockBytes = 144;
constexpr int kGroupRows = 16;
// Repacked block of 16 rows: d[16], dmin[16] (fp16), scales[8][16],
// mins[8][16] (one byte each), then 4 groups x 8 quads of 64 bytes: row r's
// 4 bytes at 4r, low nibbles = sub-block 2g, high nibbles = sub-block 2g+1.
constexpr int kScalesAt = 64, kMinsAt = 192, kQsAt = 320;
constexpr int kPackedBytes = kQsAt + 2048;

struct Activations {
  std::vector<int8_t> q;      // 8-bit values
  std::vector<float> scale;   // one per 256 values
  std::vector<int32_t> sums;  // one per 32 values
};

// y[0..16): the 16 rows of one packed group times x.
void gemv_group(const uint8_t* packed, int n_blocks, const Activations& x, float* y);

// Sum of n bytes read with 64-byte loads (the memory bound).
uint64_t plain_read(const uint8_t* p, int64_t n);

}  // namespace glassbox::q4k_rows16
