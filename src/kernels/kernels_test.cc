#include "kernels/kernels.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/block_layouts.h"
#include "kernels/kernels_test_support.h"
#include "tensor/fp16.h"

namespace glassbox::kernels {
namespace {

const std::string kModels = std::string(GLASSBOX_TEST_DATA) + "/reference/models/";

using test_support::IsaGuard;
using test_support::kAllTypes;
const char* const kSimdIsas[] = {"avx2", "avx512", "avx512vnni"};

std::string hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

std::string sha256_of_floats(const std::vector<float>& values) {
  static_assert(std::endian::native == std::endian::little, "reference hashes are of little-endian floats");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(values.data()), values.size() * sizeof(float), digest);
  return hex(digest, sizeof digest);
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// ------------------------------------------------- reference dequantization

// Every non-F32 tensor of every reference model, dequantized row by row by
// the scalar reference, must hash to what ggml's own to_float produced; each
// SIMD variant must then give the very same bits.
TEST(KernelsDequantCheck, MatchesGgmlForEveryReferenceTensor) {
  std::ifstream in(kModels + "dequant-check.json");
  ASSERT_TRUE(in) << "missing dequant-check.json";
  const nlohmann::json check = nlohmann::json::parse(in);
  IsaGuard guard;
  int checked = 0;
  std::vector<float> values, simd_values;
  for (const auto& [file_name, tensors] : check.items()) {
    const std::unique_ptr<gguf::File> file = gguf::File::open(kModels + file_name);
    for (const auto& [tensor_name, expect] : tensors.items()) {
      SCOPED_TRACE(file_name + " " + tensor_name);
      const gguf::TensorInfo* info = file->find_tensor(tensor_name);
      ASSERT_NE(info, nullptr);
      ASSERT_EQ(std::string(dtype_name(info->type)), expect.at("type").get<std::string>());
      const std::vector<int64_t> ne = expect.at("ne").get<std::vector<int64_t>>();
      for (size_t d = 0; d < ne.size(); ++d) ASSERT_EQ(info->ne[d], ne[d]);

      const TensorView view = info->view();
      const int64_t n = view.cols();
      values.assign(static_cast<size_t>(view.elements()), 0.0f);
      for (int64_t r = 0; r < view.rows(); ++r) scalar::dequantize_row(view.type, view.row(r), &values[r * n], n);

      EXPECT_EQ(sha256_of_floats(values), expect.at("f32_sha256").get<std::string>());
      double sum = 0, sum_sq = 0;
      for (float v : values) {
        sum += v;
        sum_sq += static_cast<double>(v) * v;
      }
      const double want_sum = expect.at("sum").get<double>();
      const double want_sq = expect.at("sum_sq").get<double>();
      EXPECT_NEAR(sum, want_sum, 1e-9 * want_sq + 1e-9);
      EXPECT_NEAR(sum_sq, want_sq, 1e-9 * want_sq);
      const auto first = expect.at("row0_first16").get<std::vector<double>>();
      const auto last = expect.at("last_row_last16").get<std::vector<double>>();
      ASSERT_EQ(first.size(), 16u);
      ASSERT_EQ(last.size(), 16u);
      for (size_t i = 0; i < 16; ++i) {
        EXPECT_EQ(values[i], static_cast<float>(first[i])) << "row 0 element " << i;
        EXPECT_EQ(values[values.size() - 16 + i], static_cast<float>(last[i])) << "last row, element " << i;
      }

      for (const char* isa : kSimdIsas) {
        if (!force_isa(isa)) continue;
        simd_values.assign(values.size(), 0.0f);
        for (int64_t r = 0; r < view.rows(); ++r) dequantize_row(view.type, view.row(r), &simd_values[r * n], n);
        EXPECT_EQ(0, std::memcmp(values.data(), simd_values.data(), values.size() * sizeof(float)))
            << isa << " dequantization differs from the scalar reference";
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 628);  // the count README.md gives for the reference set
}

// ---------------------------------------------------------- hand-made blocks

void put_u16(std::vector<uint8_t>& block, size_t at, uint16_t v) { std::memcpy(&block[at], &v, 2); }

std::vector<float> dequantized(DType type, const std::vector<uint8_t>& block, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  scalar::dequantize_row(type, block.data(), out.data(), n);
  return out;
}

TEST(KernelsHandMade, Q4_0) {
  std::vector<uint8_t> block(18, 0);
  put_u16(block, 0, 0x3800);  // d = 0.5
  for (int j = 0; j < 16; ++j) block[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto v = dequantized(DType::Q4_0, block, 32);
  EXPECT_EQ(v[0], -4.0f);   // (0 - 8) * 0.5
  EXPECT_EQ(v[8], 0.0f);    // (8 - 8) * 0.5
  EXPECT_EQ(v[15], 3.5f);   // (15 - 8) * 0.5
  EXPECT_EQ(v[16], 3.5f);   // high nibble of byte 0 is 15
  EXPECT_EQ(v[31], -4.0f);  // high nibble of byte 15 is 0
  const std::vector<float> ones(32, 1.0f);
  // (sum_{j<16} (j - 8) + sum_{j<16} (7 - j)) * 0.5 = (-8 - 8) * 0.5
  EXPECT_EQ(scalar::dot(DType::Q4_0, block.data(), ones.data(), 32), -8.0f);
}

TEST(KernelsHandMade, Q5_0) {
  std::vector<uint8_t> block(22, 0);
  put_u16(block, 0, 0x3C00);        // d = 1
  const uint32_t qh = 0x80000001u;  // fifth bit set for elements 0 and 31
  std::memcpy(&block[2], &qh, 4);
  block[6] = 0x03;       // element 0 low nibble 3, element 16 high nibble 0
  block[6 + 15] = 0x20;  // element 15 low nibble 0, element 31 high nibble 2
  const auto v = dequantized(DType::Q5_0, block, 32);
  EXPECT_EQ(v[0], 3.0f);     // (3 | 16) - 16
  EXPECT_EQ(v[1], -16.0f);   // 0 - 16
  EXPECT_EQ(v[16], -16.0f);  // no fifth bit
  EXPECT_EQ(v[31], 2.0f);    // (2 | 16) - 16
}

TEST(KernelsHandMade, Q8_0) {
  std::vector<uint8_t> block(34, 0);
  put_u16(block, 0, 0x3400);  // d = 0.25
  for (int j = 0; j < 32; ++j) block[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16));
  const auto v = dequantized(DType::Q8_0, block, 32);
  EXPECT_EQ(v[0], -4.0f);
  EXPECT_EQ(v[16], 0.0f);
  EXPECT_EQ(v[31], 3.75f);
}

TEST(KernelsHandMade, Q4_K) {
  std::vector<uint8_t> block(144, 0);
  put_u16(block, 0, 0x3C00);  // d = 1
  put_u16(block, 2, 0x3800);  // dmin = 0.5
  // Packed scales: sub-block j < 4 has scale = byte j & 63, min = byte j+4 & 63;
  // sub-block 4 takes scale 1 | (byte0 >> 6) << 4 = 17 and
  // min (byte8 >> 4) | (byte4 >> 6) << 4 = 2 | 3 << 4 = 50.
  const uint8_t packed[12] = {0x41, 2, 3, 4, 0xC5, 6, 7, 8, 0x21, 0, 0, 0};
  std::memcpy(&block[4], packed, 12);
  block[16 + 0] = 0x0F;   // element 0: nibble 15 in sub-block 0; element 32: nibble 0 in sub-block 1
  block[16 + 64] = 0x03;  // element 128: nibble 3 in sub-block 4
  const auto v = dequantized(DType::Q4_K, block, 256);
  EXPECT_EQ(v[0], 12.5f);    // 1 * 1 * 15 - 0.5 * 5
  EXPECT_EQ(v[1], -2.5f);    // 1 * 1 * 0 - 0.5 * 5
  EXPECT_EQ(v[32], -3.0f);   // scale 2, min 6: 0 - 0.5 * 6
  EXPECT_EQ(v[128], 26.0f);  // 17 * 3 - 0.5 * 50
}

TEST(KernelsHandMade, Q6_K) {
  std::vector<uint8_t> block(210, 0);
  uint8_t* ql = &block[0];
  uint8_t* qh = &block[128];
  int8_t scales[16] = {2, 0, -4, -1, 3, 0, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0};
  std::memcpy(&block[192], scales, 16);
  put_u16(block, 208, 0x3800);  // d = 0.5
  ql[0] = 0xA5;                 // element 0 low bits 5, element 64 low bits 10
  qh[0] = 0x1B;   // 2-bit fields (from bit 0): 3 (element 0), 2 (element 32), 1 (element 64), 0 (element 96)
  ql[32] = 0x07;  // element 32 low bits 7, element 96 low bits 0
  ql[64] = 0x0F;  // second half, element 128 low bits 15
  qh[32] = 0x03;  // element 128 high bits 3
  const auto v = dequantized(DType::Q6_K, block, 256);
  EXPECT_EQ(v[0], 21.0f);    // 0.5 * 2 * ((5 | 3 << 4) - 32)
  EXPECT_EQ(v[32], -14.0f);  // 0.5 * -4 * ((7 | 2 << 4) - 32)
  EXPECT_EQ(v[48], 16.0f);   // 0.5 * -1 * (0 - 32)
  EXPECT_EQ(v[64], -9.0f);   // 0.5 * 3 * ((10 | 1 << 4) - 32)
  EXPECT_EQ(v[96], -16.0f);  // 0.5 * 1 * (0 - 32)
  EXPECT_EQ(v[128], 77.5f);  // 0.5 * 5 * ((15 | 3 << 4) - 32)
  EXPECT_EQ(v[16], 0.0f);    // scale 1 is 0
}

TEST(KernelsHandMade, HalfAndBFloat) {
  const uint16_t halves[5] = {0x3C00, 0xC000, 0x3555, 0x0001, 0x7BFF};
  std::vector<uint8_t> f16(sizeof halves);
  std::memcpy(f16.data(), halves, sizeof halves);
  const auto h = dequantized(DType::F16, f16, 5);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 0.333251953125f);
  EXPECT_EQ(h[3], std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(h[4], 65504.0f);
  const uint16_t bfloats[3] = {0x3F80, 0xC040, 0x4049};
  std::vector<uint8_t> bf16(sizeof bfloats);
  std::memcpy(bf16.data(), bfloats, sizeof bfloats);
  const auto b = dequantized(DType::BF16, bf16, 3);
  EXPECT_EQ(b[0], 1.0f);
  EXPECT_EQ(b[1], -3.0f);
  EXPECT_EQ(b[2], 3.140625f);
}

// The word-parallel Q4_K scale unpacking used by the SIMD files must agree
// with the per-sub-block reference for any packed bytes.
TEST(KernelsHandMade, Q4_KScaleUnpackingAgrees) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    uint8_t packed[12];
    for (auto& b : packed) b = static_cast<uint8_t>(rng());
    uint8_t scales[8], mins[8];
    layout::q4_k_scales_mins(packed, scales, mins);
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      layout::q4_k_scale_min(j, packed, &sc, &m);
      ASSERT_EQ(scales[j], sc) << "sub-block " << j;
      ASSERT_EQ(mins[j], m) << "sub-block " << j;
    }
  }
}

// ------------------------------------------------------ random rows, all ISAs

// Random stored rows: random bytes, except that every fp16 scale (and each
// F16/BF16/F32 element) is a finite value of moderate size.
class RowMaker {
 public:
  explicit RowMaker(uint32_t seed) : rng_(seed) {}

  std::vector<uint8_t> row(DType type, int64_t n) {
    std::vector<uint8_t> bytes(static_cast<size_t>(row_bytes(type, n)));
    for (auto& b : bytes) b = static_cast<uint8_t>(rng_());
    std::uniform_real_distribution<float> value(-2.0f, 2.0f);
    std::uniform_real_distribution<float> scale(-0.1f, 0.1f);
    auto put_half = [&](size_t at, float f) { put_u16(bytes, at, f32_to_fp16(f)); };
    switch (type) {
      case DType::F32:
        for (int64_t i = 0; i < n; ++i) {
          const float f = value(rng_);
          std::memcpy(&bytes[4 * i], &f, 4);
        }
        break;
      case DType::F16:
        for (int64_t i = 0; i < n; ++i) put_half(2 * i, value(rng_));
        break;
      case DType::BF16:
        for (int64_t i = 0; i < n; ++i) put_u16(bytes, 2 * i, f32_to_bf16(value(rng_)));
        break;
      case DType::Q4_0:
      case DType::Q5_0:
      case DType::Q8_0: {
        const size_t block_bytes = static_cast<size_t>(traits(type).block_bytes);
        for (size_t at = 0; at < bytes.size(); at += block_bytes) put_half(at, scale(rng_));
        break;
      }
      case DType::Q4_K:
        for (size_t at = 0; at < bytes.size(); at += 144) {
          put_half(at, scale(rng_) * 0.1f);
          put_half(at + 2, scale(rng_) * 0.1f);
        }
        break;
      case DType::Q6_K:
        for (size_t at = 0; at < bytes.size(); at += 210) put_half(at + 208, scale(rng_) * 0.1f);
        break;
      default:
        break;
    }
    return bytes;
  }

  std::vector<float> activations(int64_t n) {
    std::uniform_real_distribution<float> value(-1.0f, 1.0f);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto& v : x) v = value(rng_);
    return x;
  }

 private:
  std::mt19937 rng_;
};

std::vector<int64_t> lengths_for(DType type) {
  const int64_t block = traits(type).block_elems;
  if (block == 1) return {1, 7, 8, 15, 16, 17, 31, 33, 64, 100, 257, 1000};
  return {block, 2 * block, 3 * block, 7 * block, 16 * block};
}

// The tolerance for a float dot product: relative to the sum of |w_i x_i|,
// which bounds the rounding of any summation order.
double dot_tolerance(const std::vector<float>& w, const float* x) {
  double magnitude = 0;
  for (size_t i = 0; i < w.size(); ++i) magnitude += std::fabs(static_cast<double>(w[i]) * x[i]);
  return 1e-5 * magnitude + 1e-6;
}

TEST(KernelsSimd, DequantizeAndDotMatchScalar) {
  IsaGuard guard;
  int isas_tested = 0;
  for (const char* isa : kSimdIsas) {
    if (!force_isa(isa)) {
      std::printf("[   INFO   ] %s not available on this CPU, skipped\n", isa);
      continue;
    }
    ++isas_tested;
    RowMaker maker(1234);
    for (DType type : kAllTypes) {
      for (int64_t n : lengths_for(type)) {
        SCOPED_TRACE(std::string(isa) + " " + std::string(dtype_name(type)) + " n=" + std::to_string(n));
        const std::vector<uint8_t> row = maker.row(type, n);
        const std::vector<float> x = maker.activations(n);
        std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
        scalar::dequantize_row(type, row.data(), want.data(), n);
        dequantize_row(type, row.data(), got.data(), n);
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_EQ(float_bits(got[i]), float_bits(want[i])) << "element " << i;
        }
        const float ref = scalar::dot(type, row.data(), x.data(), n);
        EXPECT_NEAR(dot(type, row.data(), x.data(), n), ref, dot_tolerance(want, x.data()));
      }
    }
  }
  if (isas_tested == 0) std::printf("[   INFO   ] no SIMD variant runs on this CPU\n");
}

// Rows that start at odd addresses (GGUF only aligns whole tensors).
TEST(KernelsSimd, UnalignedRows) {
  IsaGuard guard;
  RowMaker maker(99);
  for (const char* isa : {"scalar", "avx2", "avx512", "avx512vnni"}) {
    if (!force_isa(isa)) continue;
    for (DType type : kAllTypes) {
      const int64_t n = 2 * traits(type).block_elems * (traits(type).block_elems == 1 ? 37 : 1);
      const std::vector<uint8_t> row = maker.row(type, n);
      std::vector<uint8_t> shifted(row.size() + 1);
      std::memcpy(shifted.data() + 1, row.data(), row.size());
      const std::vector<float> x = maker.activations(n + 1);
      std::vector<float> want(static_cast<size_t>(n)), got(static_cast<size_t>(n));
      scalar::dequantize_row(type, row.data(), want.data(), n);
      dequantize_row(type, shifted.data() + 1, got.data(), n);
      EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * 4)) << isa << " " << dtype_name(type);
      EXPECT_NEAR(dot(type, shifted.data() + 1, x.data() + 1, n), scalar::dot(type, row.data(), x.data() + 1, n),
                  dot_tolerance(want, x.data() + 1))
          << isa << " " << dtype_name(type);
    }
  }
}

// ------------------------------------------------------------------- matmul

TEST(KernelsMatmul, MatchesPerTokenScalarDot) {
  IsaGuard guard;
  ThreadPool pool(2);
  RowMaker maker(7);
  for (const char* isa : {"scalar", "avx2", "avx512", "avx512vnni"}) {
    if (!force_isa(isa)) continue;
    for (DType type : kAllTypes) {
      // 150 rows: several row tiles plus a remainder; F32/F16/BF16 also get a
      // row length that is not a multiple of any vector width.
      const int64_t cols = traits(type).block_elems == 1 ? 203 : 512;
      const int64_t rows = 150;
      const int64_t stride = row_bytes(type, cols) + 6;  // padded rows
      std::vector<uint8_t> data(static_cast<size_t>(stride * rows));
      for (int64_t r = 0; r < rows; ++r) {
        const auto row = maker.row(type, cols);
        std::memcpy(&data[r * stride], row.data(), row.size());
      }
      const TensorView W = TensorView::matrix(type, data.data(), cols, rows, stride);
      for (int64_t n_tokens : {1, 3, 17}) {
        SCOPED_TRACE(std::string(isa) + " " + std::string(dtype_name(type)) + " tokens=" + std::to_string(n_tokens));
        const std::vector<float> X = maker.activations(n_tokens * cols);
        std::vector<float> Y(static_cast<size_t>(n_tokens * rows), NAN), Y_serial(Y.size(), NAN);
        matmul(W, X.data(), n_tokens, Y.data(), &pool);
        matmul(W, X.data(), n_tokens, Y_serial.data(), nullptr);
        std::vector<float> w(static_cast<size_t>(cols));
        for (int64_t r = 0; r < rows; ++r) {
          scalar::dequantize_row(type, W.row(r), w.data(), cols);
          for (int64_t t = 0; t < n_tokens; ++t) {
            const float* x = &X[t * cols];
            const float ref = scalar::dot(type, W.row(r), x, cols);
            const double tol = dot_tolerance(w, x);
            ASSERT_NEAR(Y[t * rows + r], ref, tol) << "row " << r << " token " << t;
            ASSERT_EQ(Y[t * rows + r], Y_serial[t * rows + r]) << "row " << r << " token " << t;
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------ bad arguments

TEST(KernelsErrors, RejectsBadTypesAndLengths) {
  std::vector<uint8_t> bytes(1024, 0);
  std::vector<float> x(512, 1.0f);
  EXPECT_THROW(scalar::dot(DType::Q4_0, bytes.data(), x.data(), 33), Error);
  EXPECT_THROW(dot(DType::Q4_K, bytes.data(), x.data(), 128), Error);
  EXPECT_THROW(dequantize_row(DType::Q4_1, bytes.data(), x.data(), 32), Error);
  EXPECT_THROW(scalar::dequantize_row(static_cast<DType>(77), bytes.data(), x.data(), 32), Error);
  EXPECT_THROW(dot(DType::F32, bytes.data(), x.data(), -1), Error);

  TensorView W;
  W.type = DType::Q8_0;
  W.data = bytes.data();
  W.ne[0] = 64;
  W.ne[1] = 2;
  W.row_stride = 34;  // one block, but a row needs two
  std::vector<float> Y(2);
  EXPECT_THROW(matmul(W, x.data(), 1, Y.data(), nullptr), Error);
  W.row_stride = 68;
  W.ne[0] = 48;  // not a multiple of 32
  EXPECT_THROW(matmul(W, x.data(), 1, Y.data(), nullptr), Error);
}

TEST(KernelsDispatch, ForceIsa) {
  IsaGuard guard;
  EXPECT_FALSE(force_isa("sse9"));
  EXPECT_TRUE(force_isa("scalar"));
  EXPECT_EQ(active_isa(), "scalar");
  EXPECT_TRUE(force_isa("auto"));
  const std::string best(active_isa());
  EXPECT_TRUE(best == "scalar" || best == "avx2" || best == "avx512" || best == "avx512vnni");
  if (best == "avx512vnni") {
    EXPECT_TRUE(force_isa("avx512"));
    EXPECT_EQ(active_isa(), "avx512");
  }
  if (best == "avx512" || best == "avx512vnni") {
    EXPECT_TRUE(force_isa("avx2"));
  }
}

}  // namespace
}  // namespace glassbox::kernels
