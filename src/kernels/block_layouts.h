// ggml block layouts of the quantized types glassbox computes with, plus the
// small helpers every kernel variant shares. Blocks are read from byte
// pointers that may be unaligned (GGUF only aligns whole tensors), so every
// multi-byte field is read with memcpy.
//
// The helpers have internal linkage (static) on purpose: this header is also
// compiled into the AVX2/AVX-512 files, and an `inline` function emitted
// there could be picked by the linker for the scalar code too, putting
// AVX instructions on a path that must run on any x86-64 CPU.
// load_fp16 must not be used from SIMD files (it calls the shared inline
// fp16_to_f32); they convert with F16C instead.
#pragma once

#include <cstdint>
#include <cstring>

#include "tensor/fp16.h"

namespace glassbox::kernels::layout {

// Q4_0: fp16 d, then 16 bytes; low nibbles are elements 0..15, high nibbles
// 16..31; value = (q - 8) * d.
inline constexpr int kQ4_0Elems = 32;
inline constexpr int kQ4_0Bytes = 2 + 16;
inline constexpr int kQ4_0Qs = 2;

// Q5_0: fp16 d, 4 bytes qh (bit j = 5th bit of element j), 16 bytes nibbles
// as in Q4_0; value = ((q | hbit << 4) - 16) * d.
inline constexpr int kQ5_0Elems = 32;
inline constexpr int kQ5_0Bytes = 2 + 4 + 16;
inline constexpr int kQ5_0Qh = 2;
inline constexpr int kQ5_0Qs = 6;

// Q8_0: fp16 d, 32 int8; value = q * d.
inline constexpr int kQ8_0Elems = 32;
inline constexpr int kQ8_0Bytes = 2 + 32;
inline constexpr int kQ8_0Qs = 2;

// Q4_K: 256 elements in 8 sub-blocks of 32. fp16 d, fp16 dmin, 12 bytes of
// packed 6-bit (scale, min) pairs, 128 bytes of nibbles. Sub-blocks 2k and
// 2k+1 share the 32 bytes qs[32k..32k+31] (low, then high nibbles);
// value = d * scale * q - dmin * min.
inline constexpr int kQ4_KElems = 256;
inline constexpr int kQ4_KBytes = 2 + 2 + 12 + 128;
inline constexpr int kQ4_KDmin = 2;
inline constexpr int kQ4_KScales = 4;
inline constexpr int kQ4_KQs = 16;

// Q4_K rows packed in groups of 16 for the matrix-vector product: per block
// of 256 columns, 16 d (fp16), 16 dmin (fp16), scales[8][16] and mins[8][16]
// (one byte each, unpacked), then for each of the 4 groups of 64 values and
// each of their 8 quads, 64 bytes holding 4 bytes per row: row r's bytes
// 4r..4r+3 are Q4_K's qs bytes 32 g + 4 k .. + 3 (low nibbles: values
// 64 g + 4 k .., sub-block 2 g; high nibbles: values 64 g + 32 + 4 k ..,
// sub-block 2 g + 1). One 32-bit lane per row, so a dot-product instruction
// meets four activations broadcast to all 16 rows.
inline constexpr int kRows16 = 16;
inline constexpr int kRows16Dmin = 32;
inline constexpr int kRows16Scales = 64;
inline constexpr int kRows16Mins = 192;
inline constexpr int kRows16Qs = 320;
inline constexpr int kRows16Bytes = kRows16Qs + 2048;  // per block of 256 columns

// Q4_K quads (Rows16Layout::Q4_K_Quads): the same blocks, with runs of four
// groups of 16 rows interleaved block by block: in the run of groups
// 4 q .. 4 q + 3, block b of group 4 q + i lies at (4 b + i) * kRows16Bytes
// from the run's start (each run 4 * n / 256 blocks long). A kernel reads
// one stream and uses each block's activations for four groups in a row,
// while they are still in L1: along a row of 3072 columns one group
// streams 27 KB (along 8960, 80 KB) through L1 between two uses of the
// same activations, which evicts them. Matrices of a multiple of 64 rows.
// The Q6_K quads (Rows16Layout::Q6_K_Quads) place the six-bit Q6_K blocks
// below (kRows16Q6Bytes) the same way.
inline constexpr int kQuadGroups = 4;

// Q6_K: 256 elements in 16 sub-blocks of 16. 128 bytes ql (low 4 bits),
// 64 bytes qh (high 2 bits), 16 int8 scales, fp16 d;
// value = d * scale * (q - 32).
inline constexpr int kQ6_KElems = 256;
inline constexpr int kQ6_KBytes = 128 + 64 + 16 + 2;
inline constexpr int kQ6_KQh = 128;
inline constexpr int kQ6_KScales = 192;
inline constexpr int kQ6_KD = 208;

// The 6-bit value (0..63, standing for value - 32) of element i (0..255) of
// a Q6_K block: each half of 128 keeps its low nibbles in 64 ql bytes
// (elements l and l + 64 share byte l) and its high bit pairs in 32 qh bytes
// (bits 2k..2k+1 of byte l for element 32 k + l). Its scale is scales[i / 16].
static inline int q6_k_value(const uint8_t* block, int i) {
  const int half = i / 128, l = i % 128, quarter = l / 32, j = l % 32;
  const uint8_t low_byte = block[64 * half + j + 32 * (quarter % 2)];
  const int low = quarter < 2 ? (low_byte & 0x0F) : (low_byte >> 4);
  const int high = (block[kQ6_KQh + 32 * half + j] >> (2 * quarter)) & 3;
  return low | (high << 4);
}

// Q6_K rows packed in groups of 16 for the matrix-vector product, like Q4_K
// above (no larger than the rows): per block of 256 columns, 16 d (fp16),
// scales[16][16] (sub-block s, row r: byte 16 s + r), then per sub-block s
// 192 bytes of three 64-byte vectors, 4 bytes per row (row r: bytes
// 4r..4r+3 of each), element e = 16 s + k for k in 0..15
// (Rows16Layout::Q6_K_SixBit):
//   vector m (0..2) byte k: bits 0-5 element 4 m + k, bits 6-7: bits
//                           2m..2m+1 of element 12 + k
// so three runs are one AND each and the fourth gathers its three bit
// pairs: with AVX2 three ANDs, three shifts and two ORs (11 steps for the
// four runs), with AVX-512 three shifts, an AND and two ternary-logic
// selects (9). A form with the low nibbles and high bit pairs apart, as
// Q6_K stores them, took 17 and 13.
inline constexpr int kRows16Q6Scales = 32;
inline constexpr int kRows16Q6Qs = 32 + 256;
inline constexpr int kRows16Q6Bytes = kRows16Q6Qs + 16 * 192;  // 16 * kQ6_KBytes

// Q8_0 rows packed in groups of 16 (Rows16Layout::Q8_0; same size as the
// rows): per block of 32 columns, the 16 rows' d (fp16), then 8 steps of 64
// bytes: step k holds row r's values 4k..4k+3 in bytes 4r..4r+3. Eight rows
// per 256-bit vector meet four activations broadcast to every lane, and the
// 16 scales convert with two instructions, where stored rows need a scalar
// conversion and a broadcast per row and block. Only matrices without the
// value -128 are packed (kernels::can_pack_rows16): the AVX2 kernel gives w
// the sign of x, and -(-128) does not fit a byte. ggml's quantizer never
// writes it (its values are round(x / d) with d = amax / 127).
inline constexpr int kRows16Q8Elems = 32;
inline constexpr int kRows16Q8Qs = 32;
inline constexpr int kRows16Q8Bytes = kRows16Q8Qs + 8 * 64;  // 16 * kQ8_0Bytes

// Q4_0 rows packed in groups of 16 (Rows16Layout::Q4_0; same size as the
// rows): per block of 32 columns, the 16 rows' d (fp16), then 4 steps of 64
// bytes: step k holds row r's bytes qs[4k..4k+3] in bytes 4r..4r+3 (low
// nibbles: values 4k.., high nibbles: values 16 + 4k..).
inline constexpr int kRows16Q4_0Elems = 32;
inline constexpr int kRows16Q4_0Qs = 32;
inline constexpr int kRows16Q4_0Bytes = kRows16Q4_0Qs + 4 * 64;  // 16 * kQ4_0Bytes

// Q5_0 rows packed in the Q8_0 form above (Rows16Layout::Q5_0_AsQ8_0): each
// value q - 16 (-16..15) in a byte, so the Q8_0 kernels read them; 544 bytes
// per 16 rows and 32 columns against the rows' 352. Q5_0 holds the tensors
// whose rows are not a multiple of 256 values in llama.cpp's Q4_K_M files
// (its fallback for Q4_K), e.g. most of Qwen2.5-0.5B's (896 columns).

static inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

static inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

static inline float load_fp16(const uint8_t* p) { return fp16_to_f32(load_u16(p)); }

// Unpacks the 6-bit scale and min of Q4_K sub-block j (0..7) from the 12
// packed bytes: sub-blocks 0..3 keep theirs in the low 6 bits of bytes j and
// j+4; sub-blocks 4..7 combine a nibble of byte j+4 with the top 2 bits of
// bytes j-4 (scale) and j (min).
static inline void q4_k_scale_min(int j, const uint8_t* packed, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = packed[j] & 63;
    *min = packed[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((packed[j + 4] & 0xF) | ((packed[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
  }
}

// All eight (scale, min) pairs of a Q4_K block at once, with 32-bit word
// operations instead of eight calls of q4_k_scale_min (same results; the
// tests compare both). Words: w0 = bytes 0..3, w1 = bytes 4..7, w2 = 8..11
// (little-endian, as on every CPU the SIMD files run on).
static inline void q4_k_scales_mins(const uint8_t* packed, uint8_t scales[8], uint8_t mins[8]) {
  const uint32_t w0 = load_u32(packed), w1 = load_u32(packed + 4), w2 = load_u32(packed + 8);
  const uint32_t scales_0_3 = w0 & 0x3f3f3f3fu;
  const uint32_t mins_0_3 = w1 & 0x3f3f3f3fu;
  const uint32_t scales_4_7 = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
  const uint32_t mins_4_7 = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
  std::memcpy(scales, &scales_0_3, 4);
  std::memcpy(scales + 4, &scales_4_7, 4);
  std::memcpy(mins, &mins_0_3, 4);
  std::memcpy(mins + 4, &mins_4_7, 4);
}

}  // namespace glassbox::kernels::layout
