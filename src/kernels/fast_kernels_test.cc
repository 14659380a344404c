// The fast path (quantized activations), attention and fp16 conversion:
// every SIMD variant this CPU runs against the scalar references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/kernels_test_support.h"
#include "tensor/fp16.h"

namespace glassbox::kernels {
namespace {

using test_support::available_isas;
using test_support::clear_minus_128;
using test_support::IsaGuard;
using test_support::kAllTypes;
const DType kQuantTypes[] = {DType::Q4_0, DType::Q5_0, DType::Q8_0, DType::Q4_K, DType::Q6_K};

// The CPU tunings to run an ISA's kernels with (kernels::CpuTuning): on
// AVX-512 both ways, whatever this CPU would choose, so that every variant
// of its kernels runs; other ISAs read no tuning.
std::vector<CpuTuning> tunings_for(const std::string& isa) {
  if (isa.rfind("avx512", 0) != 0) return {cpu_tuning()};
  return {CpuTuning{.prefetch_packed = true, .avx512_attention = true},
          CpuTuning{.prefetch_packed = false, .avx512_attention = false}};
}

using test_support::put_u16;
using test_support::random_floats;
using test_support::random_rows;

// Bound on the float rounding of a dot product: relative to the sum of
// |w_i x_i| over the dequantized weights and activations.
double fast_tolerance(DType type, const uint8_t* row, const QuantizedActs& x, int64_t t) {
  const int64_t n = x.n();
  std::vector<float> w(static_cast<size_t>(n));
  scalar::dequantize_row(type, row, w.data(), n);
  double magnitude = 0;
  for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(w[i] * x.qs(t)[i] * x.scales(t)[i / 32]);
  return 1e-5 * magnitude + 1e-6;
}

double f32_tolerance(DType type, const uint8_t* row, const float* x, int64_t n) {
  std::vector<float> w(static_cast<size_t>(n));
  scalar::dequantize_row(type, row, w.data(), n);
  double magnitude = 0;
  for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(w[i]) * x[i]);
  return 1e-5 * magnitude + 1e-6;
}

// ------------------------------------------------------------ quantization

TEST(FastQuantize, FollowsGgmlRules) {
  // Q8_0-style blocks: scale amax / 127 rounded to fp16, values x * 127 / amax.
  std::vector<float> x(32, 0.0f);
  x[0] = 1.0f;
  x[1] = -0.5f;
  x[2] = 0.25f;
  x[3] = 1.0f / 254.0f;  // exactly half a step: ties to even (0)
  x[4] = 3.0f / 254.0f;  // 1.5 steps: ties to even (2)
  std::vector<int8_t> qs(32);
  std::vector<float> scales(1);
  std::vector<int32_t> sums(1);
  scalar::quantize_acts(ActFormat::Q8_32, x.data(), 32, qs.data(), scales.data(), sums.data());
  EXPECT_EQ(scales[0], fp16_to_f32(f32_to_fp16(1.0f / 127.0f)));
  EXPECT_EQ(qs[0], 127);
  EXPECT_EQ(qs[1], -64);  // -63.5 -> -64 (even)
  EXPECT_EQ(qs[2], 32);   // 31.75
  EXPECT_EQ(qs[3], 0);
  EXPECT_EQ(qs[4], 2);
  EXPECT_EQ(sums[0], 127 - 64 + 32 + 2);

  // Q8_K-style blocks: the value of largest magnitude maps to -127, the
  // scale is 1 / (-127 / max).
  std::vector<float> y(256, 0.0f);
  y[10] = 2.0f;
  y[11] = -1.0f;
  std::vector<int8_t> qk(256);
  std::vector<float> sk(8);
  std::vector<int32_t> sumk(8);
  scalar::quantize_acts(ActFormat::Q8_256, y.data(), 256, qk.data(), sk.data(), sumk.data());
  EXPECT_EQ(qk[10], -127);
  EXPECT_EQ(qk[11], 64);  // 63.5 -> 64
  for (int r = 0; r < 8; ++r) EXPECT_EQ(sk[r], 1.0f / (-127.0f / 2.0f));
  EXPECT_EQ(sumk[0], -127 + 64);

  EXPECT_THROW(scalar::quantize_acts(ActFormat::Q8_256, y.data(), 128, qk.data(), sk.data(), sumk.data()), Error);
}

// A row quantized piece by piece (lane groups, in any order, as the threads
// of a parallel section finish them) has the bits of the row quantized at
// once: every derived array too. Misaligned pieces are refused.
TEST(FastQuantize, ColumnPiecesEqualTheWholeRow) {
  IsaGuard guard;
  std::mt19937 rng(21);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    for (ActFormat format : {ActFormat::Q8_32, ActFormat::Q8_256}) {
      const int64_t group = format == ActFormat::Q8_256 ? 256 : 512;
      for (int64_t n : {group, 4 * group, 3 * group + (format == ActFormat::Q8_32 ? 96 : 0)}) {
        SCOPED_TRACE(isa + " n=" + std::to_string(n) + (format == ActFormat::Q8_32 ? " Q8_32" : " Q8_256"));
        const std::vector<float> x = random_floats(n, rng, 3.0f);
        QuantizedActs whole, pieces;
        whole.quantize(format, x.data(), n, 1, n, nullptr);
        pieces.begin_columns(format, n);
        std::vector<int64_t> starts;
        for (int64_t c = 0; c < n; c += group) starts.push_back(c);
        std::shuffle(starts.begin(), starts.end(), rng);
        for (int64_t c : starts) pieces.quantize_columns(x.data(), c, std::min(n, c + group));
        ASSERT_EQ(pieces.rows(), 1);
        ASSERT_EQ(pieces.n(), n);
        ASSERT_EQ(0, std::memcmp(whole.qs(0), pieces.qs(0), static_cast<size_t>(n)));
        for (int64_t b = 0; b < n / 32; ++b) {
          ASSERT_EQ(whole.scales(0)[b], pieces.scales(0)[b]) << b;
          ASSERT_EQ(whole.sums(0)[b], pieces.sums(0)[b]) << b;
        }
        for (int64_t i = 0; i < n / 16; ++i) {
          ASSERT_EQ(whole.scaled_sums(0)[i], pieces.scaled_sums(0)[i]) << i;
          ASSERT_EQ(whole.sub_bias(0)[i], pieces.sub_bias(0)[i]) << i;
          // Its definition: -32 times the sum of the run's 16 values.
          int32_t sum = 0;
          for (int64_t j = 16 * i; j < 16 * i + 16; ++j) sum += whole.qs(0)[j];
          ASSERT_EQ(whole.sub_bias(0)[i], -32 * sum) << i;
        }
        for (int64_t l = 0; l < n / 4; ++l) {
          ASSERT_EQ(whole.lane_bias(0)[l], pieces.lane_bias(0)[l]) << l;
          ASSERT_EQ(whole.lane_scales(0)[l], pieces.lane_scales(0)[l]) << l;
        }
        if (format == ActFormat::Q8_256) {
          ASSERT_EQ(0, std::memcmp(whole.qs_q4k(0), pieces.qs_q4k(0), static_cast<size_t>(n)));
        }
        ASSERT_EQ(0, std::memcmp(whole.qs_lanes(0), pieces.qs_lanes(0), static_cast<size_t>(whole.n_padded())));
        for (int64_t g = 0; g < whole.n_padded() / 16; ++g)
          ASSERT_EQ(whole.group_scales(0)[g], pieces.group_scales(0)[g]);
        EXPECT_THROW(pieces.quantize_columns(x.data(), 32, group), Error);     // starts inside a group
        EXPECT_THROW(pieces.quantize_columns(x.data(), 0, group / 2), Error);  // ends inside one
        EXPECT_THROW(pieces.quantize_columns(x.data(), 0, n + group), Error);  // past the row
        EXPECT_THROW(pieces.quantize_columns(x.data(), group, group), Error);  // empty
      }
    }
  }
  QuantizedActs q;
  EXPECT_THROW(q.begin_columns(ActFormat::Q8_256, 100), Error);
  EXPECT_THROW(q.begin_columns(ActFormat::F32, 256), Error);
}

TEST(FastQuantize, SimdEqualsScalarBitForBit) {
  IsaGuard guard;
  std::mt19937 rng(3);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    for (ActFormat format : {ActFormat::Q8_32, ActFormat::Q8_256}) {
      for (int64_t n : {256, 512, 1024 + 256}) {
        for (int64_t extra : {0, 32}) {
          const int64_t len = format == ActFormat::Q8_32 ? n + extra : n;
          SCOPED_TRACE(isa + " n=" + std::to_string(len) + (format == ActFormat::Q8_32 ? " Q8_32" : " Q8_256"));
          const int64_t rows = 3;
          std::vector<float> x = random_floats(rows * len, rng, 3.0f);
          for (int64_t i = 0; i < len; ++i) x[static_cast<size_t>(len + i)] = 0.0f;  // an all-zero row
          x[5] = -7.5f;                                                              // a clear maximum
          QuantizedActs q;
          q.quantize(format, x.data(), len, rows, len, nullptr);
          std::vector<int8_t> qs(static_cast<size_t>(len));
          std::vector<float> scales(static_cast<size_t>(len / 32));
          std::vector<int32_t> sums(static_cast<size_t>(len / 32));
          for (int64_t t = 0; t < rows; ++t) {
            scalar::quantize_acts(format, x.data() + t * len, len, qs.data(), scales.data(), sums.data());
            ASSERT_EQ(0, std::memcmp(qs.data(), q.qs(t), static_cast<size_t>(len))) << "row " << t;
            for (int64_t b = 0; b < len / 32; ++b) {
              ASSERT_EQ(scales[b], q.scales(t)[b]) << "row " << t << " block " << b;
              ASSERT_EQ(sums[b], q.sums(t)[b]) << "row " << t << " block " << b;
              for (int half = 0; half < 2; ++half) {
                int32_t s16 = 0;
                for (int j = 0; j < 16; ++j) s16 += qs[32 * b + 16 * half + j];
                ASSERT_EQ(q.scaled_sums(t)[2 * b + half], scales[b] * static_cast<float>(s16));
              }
            }
            for (int64_t l = 0; l < len / 4; ++l) {
              const int32_t four = qs[4 * l] + qs[4 * l + 1] + qs[4 * l + 2] + qs[4 * l + 3];
              ASSERT_EQ(q.lane_bias(t)[l], -128 * four);
              ASSERT_EQ(q.lane_scales(t)[l], scales[l / 8]);
            }
          }
        }
      }
    }
  }
}

// ------------------------------------------------------------ dot products

std::vector<int64_t> fast_lengths(DType type) {
  if (traits(type).block_elems == 256) return {256, 512, 1024, 2560};
  return {32, 64, 96, 352, 1024, 1056};
}

TEST(FastDot, SimdMatchesScalarReference) {
  IsaGuard guard;
  std::mt19937 rng(11);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    for (DType type : kQuantTypes) {
      for (int64_t n : fast_lengths(type)) {
        SCOPED_TRACE(isa + " " + std::string(dtype_name(type)) + " n=" + std::to_string(n));
        const int64_t stride = row_bytes(type, n) + 1;  // unaligned rows
        const auto rows = random_rows(type, n, 2, stride, rng);
        const auto x = random_floats(n, rng);
        QuantizedActs q;
        q.quantize(act_format_for(type), x.data(), n, 1, n, nullptr);
        for (int r = 0; r < 2; ++r) {
          const uint8_t* row = rows.data() + r * stride;
          const float want = scalar::dot_q8(type, row, q, 0);
          EXPECT_NEAR(dot_q8(type, row, q, 0), want, fast_tolerance(type, row, q, 0));
        }
      }
    }
  }
}

// The fast product is close to the exact one (F32 activations): the
// difference is the activation rounding, at most half a step per value.
TEST(FastDot, CloseToExactProduct) {
  std::mt19937 rng(5);
  for (DType type : kQuantTypes) {
    const int64_t n = 1024;
    const auto row = random_rows(type, n, 1, row_bytes(type, n), rng);
    const auto x = random_floats(n, rng);
    QuantizedActs q;
    q.quantize(act_format_for(type), x.data(), n, 1, n, nullptr);
    std::vector<float> w(n);
    scalar::dequantize_row(type, row.data(), w.data(), n);
    double bound = 0;
    for (int64_t i = 0; i < n; ++i) bound += std::fabs(w[i] * 0.5f * q.scales(0)[i / 32]);
    EXPECT_NEAR(scalar::dot_q8(type, row.data(), q, 0), scalar::dot(type, row.data(), x.data(), n), bound + 1e-5)
        << dtype_name(type);
  }
}

// ----------------------------------------------------------------- matmul

TEST(FastMatmul, MatchesReferenceForEveryTypeAndTokenCount) {
  IsaGuard guard;
  ThreadPool pool(2);
  std::mt19937 rng(21);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    for (DType type : kAllTypes) {
      const int64_t cols = traits(type).block_elems == 256 ? 512 : traits(type).block_elems == 1 ? 203 : 864;
      const int64_t rows = 150;
      const int64_t stride = row_bytes(type, cols) + 6;
      const auto data = random_rows(type, cols, rows, stride, rng);
      const TensorView W = TensorView::matrix(type, data.data(), cols, rows, stride);
      const int64_t max_tokens = 19;
      const auto X = random_floats(max_tokens * cols, rng);
      std::vector<float> Y_all;  // results with all tokens at once
      for (int64_t n_tokens : {max_tokens, int64_t{1}, int64_t{2}, int64_t{5}}) {
        SCOPED_TRACE(isa + " " + std::string(dtype_name(type)) + " tokens=" + std::to_string(n_tokens));
        Activations acts;
        acts.set(X.data(), cols, n_tokens, cols);
        std::vector<float> Y(static_cast<size_t>(n_tokens * rows), NAN), Y_serial(Y.size(), NAN);
        matmul_fast(W, acts, Y.data(), &pool);
        matmul_fast(W, acts, Y_serial.data(), nullptr);
        const ActFormat format = act_format_for(type);
        for (int64_t t = 0; t < n_tokens; ++t) {
          for (int64_t r = 0; r < rows; ++r) {
            const float got = Y[t * rows + r];
            ASSERT_EQ(got, Y_serial[t * rows + r]) << "row " << r << " token " << t << ": threads change the result";
            if (format == ActFormat::F32 || (n_tokens > 1 && multi_token_f32(type))) {
              ASSERT_NEAR(got, scalar::dot(type, W.row(r), &X[t * cols], cols),
                          f32_tolerance(type, W.row(r), &X[t * cols], cols))
                  << "row " << r << " token " << t;
            } else {
              const QuantizedActs& q = acts.quantized(format);
              ASSERT_NEAR(got, scalar::dot_q8(type, W.row(r), q, t), fast_tolerance(type, W.row(r), q, t))
                  << "row " << r << " token " << t;
            }
            // Batch invariance: any number of tokens >= 2 gives the same bits.
            if (n_tokens == max_tokens) {
              Y_all = Y;
            } else if (n_tokens >= 2) {
              ASSERT_EQ(got, Y_all[t * rows + r]) << "row " << r << " token " << t << ": depends on the batch size";
            }
          }
        }
      }
    }
  }
}

// The F32 tile product over token panels: the tokens' values as
// Activations lays them out, every ISA's kernel bit for bit equal to the
// reference, and the reference equal to the definition (each row . token
// summed in order of k by fused multiply-adds) on the original rows; for
// any number of rows (the kernels take 6 at a time), and token ranges that
// start and end anywhere in a panel or in either half of one.
TEST(F32Panels, EveryIsaEqualsTheDefinitionBitForBit) {
  IsaGuard guard;
  std::mt19937 rng(32);
  const int64_t n_tokens = 40;
  // 4500: two pieces of k in the AVX2 kernel (kF32PanelPieceCols), each
  // lane's sum resumed from the output.
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{203}, int64_t{1030}, int64_t{4500}}) {
    const int64_t max_rows = 13, ldw = n + 3;
    const auto W = random_floats(max_rows * ldw, rng);
    const auto X = random_floats(n_tokens * (n + 1), rng);
    Activations acts;
    acts.set(X.data(), n + 1, n_tokens, n);
    acts.prepare_for(DType::F16, nullptr);
    const float* panels = acts.f32_panels();
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t k = 0; k < n; ++k)
        ASSERT_EQ(panels[t / 16 * 16 * n + 16 * k + t % 16], X[t * (n + 1) + k]) << "token " << t << " value " << k;
    for (int64_t k = 0; k < n; ++k)
      for (int64_t t = n_tokens; t < 48; ++t) ASSERT_EQ(panels[2 * 16 * n + 16 * k + t % 16], 0.0f) << "padding";
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      for (int64_t rows = 1; rows <= max_rows; ++rows) {
        for (auto [t0, count] : {std::pair<int64_t, int64_t>{0, 40},
                                 {3, 5},
                                 {8, 8},
                                 {9, 7},
                                 {17, 20},
                                 {39, 1},
                                 {15, 2},
                                 {0, 1},
                                 {32, 8}}) {
          SCOPED_TRACE(isa + " n=" + std::to_string(n) + " rows=" + std::to_string(rows) + " tokens " +
                       std::to_string(t0) + "+" + std::to_string(count));
          const int64_t ldy = rows + 2;
          std::vector<float> got(static_cast<size_t>(count * ldy), NAN), want(got.size(), NAN);
          gemm_f32_panels(W.data(), ldw, rows, panels, t0, count, n, got.data(), ldy);
          scalar::gemm_f32_panels(W.data(), ldw, rows, panels, t0, count, n, want.data(), ldy);
          for (int64_t t = 0; t < count; ++t) {
            for (int64_t r = 0; r < ldy; ++r) {
              const float g = got[t * ldy + r];
              if (r >= rows) {
                ASSERT_TRUE(std::isnan(g)) << "row " << r << " beyond the tile was written";
                continue;
              }
              float definition = 0.0f;
              for (int64_t k = 0; k < n; ++k)
                definition = std::fma(W[r * ldw + k], X[(t0 + t) * (n + 1) + k], definition);
              ASSERT_EQ(want[t * ldy + r], definition) << "reference, row " << r << " token " << t;
              ASSERT_EQ(g, definition) << "row " << r << " token " << t;
            }
          }
        }
      }
    }
  }
}

// The one-token F16 and BF16 product of long rows (kernels_internal.h,
// GemvLongRowsFn): every ISA against the reference dot product, each row
// the same bits whichever rows it is computed with (eight at a time or
// alone), and matmul_fast taking it for rows of 16 KiB of activations
// (threads do not change the result).
TEST(LongRows, EveryIsaMatchesTheReferenceWhateverTheGrouping) {
  IsaGuard guard;
  ThreadPool pool(2);
  std::mt19937 rng(63);
  for (DType type : {DType::F16, DType::BF16}) {
    for (int64_t n : {int64_t{4096}, int64_t{4107}, int64_t{8960}}) {
      const int64_t rows = 37, stride = 2 * n + 6;
      const auto data = random_rows(type, n, rows, stride, rng);
      const TensorView W = TensorView::matrix(type, data.data(), n, rows, stride);
      const auto x = random_floats(n, rng);
      for (const std::string& isa : available_isas()) {
        ASSERT_TRUE(force_isa(isa));
        SCOPED_TRACE(isa + " " + std::string(dtype_name(type)) + " n=" + std::to_string(n));
        std::vector<float> all(rows + 1, NAN), from3(rows, NAN);
        gemv_long_rows(type, W.row(0), stride, rows, n, x.data(), all.data());
        ASSERT_TRUE(std::isnan(all[rows])) << "wrote beyond the rows";
        gemv_long_rows(type, W.row(3), stride, rows - 3, n, x.data(), from3.data());
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_NEAR(all[r], scalar::dot(type, W.row(r), x.data(), n), f32_tolerance(type, W.row(r), x.data(), n))
              << "row " << r;
          if (r >= 3) {
            ASSERT_EQ(from3[r - 3], all[r]) << "row " << r << " depends on the rows beside it";
          }
        }
        Activations acts;
        acts.set(x.data(), n, 1, n);
        std::vector<float> threaded(rows, NAN), serial(rows, NAN);
        matmul_fast(W, acts, threaded.data(), &pool);
        matmul_fast(W, acts, serial.data(), nullptr);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(threaded[r], serial[r]) << "row " << r << ": threads change the result";
          ASSERT_NEAR(threaded[r], scalar::dot(type, W.row(r), x.data(), n), f32_tolerance(type, W.row(r), x.data(), n))
              << "matmul_fast, row " << r;
        }
      }
    }
  }
}

TEST(FastMatmul, SeveralTasksAndRowRanges) {
  ThreadPool pool(2);
  std::mt19937 rng(8);
  const int64_t cols = 256;
  const auto q8 = random_rows(DType::Q8_0, cols, 40, row_bytes(DType::Q8_0, cols), rng);
  const auto q4k = random_rows(DType::Q4_K, cols, 24, row_bytes(DType::Q4_K, cols), rng);
  TensorView A{DType::Q8_0, q8.data(), {cols, 40, 1, 1}, row_bytes(DType::Q8_0, cols)};
  TensorView B{DType::Q4_K, q4k.data(), {cols, 24, 1, 1}, row_bytes(DType::Q4_K, cols)};
  for (int64_t n_tokens : {1, 3}) {
    const auto X = random_floats(n_tokens * cols, rng);
    Activations acts;
    acts.set(X.data(), cols, n_tokens, cols);
    std::vector<float> ya(n_tokens * 40), yb(n_tokens * 24);
    const MatmulTask tasks[] = {{&A, &acts, ya.data(), 40}, {&B, &acts, yb.data(), 24}};
    matmul_fast(tasks, &pool);
    // The same rows one range at a time.
    std::vector<float> ya2(ya.size()), yb2(yb.size());
    matmul_fast_rows(A, acts, 0, 17, ya2.data(), 40);
    matmul_fast_rows(A, acts, 17, 40, ya2.data(), 40);
    matmul_fast_rows(B, acts, 0, 24, yb2.data(), 24);
    EXPECT_EQ(ya, ya2);
    EXPECT_EQ(yb, yb2);
  }
  Activations wrong;
  const auto X = random_floats(128, rng);
  wrong.set(X.data(), 128, 1, 128);
  std::vector<float> y(40);
  EXPECT_THROW(matmul_fast(A, wrong, y.data(), nullptr), Error);  // 128 values for rows of 256
}

// One token on a pool: each thread streams its own run of 16-row units and
// takes units from the back of the others' when done. Every row of every task must be written
// once, with the bits of the single-threaded product, for any thread count
// (more threads than cores too) and packed and unpacked matrices together.
TEST(FastMatmul, OneTokenStreamsCoverEveryRowForAnyThreadCount) {
  std::mt19937 rng(9);
  const int64_t cols = 512;
  const auto q4k = random_rows(DType::Q4_K, cols, 480, row_bytes(DType::Q4_K, cols), rng);
  const auto q6k = random_rows(DType::Q6_K, cols, 1000, row_bytes(DType::Q6_K, cols), rng);
  const auto q8 = random_rows(DType::Q8_0, cols, 33, row_bytes(DType::Q8_0, cols), rng);
  TensorView A{DType::Q4_K, q4k.data(), {cols, 480, 1, 1}, row_bytes(DType::Q4_K, cols)};
  TensorView B{DType::Q6_K, q6k.data(), {cols, 1000, 1, 1}, row_bytes(DType::Q6_K, cols)};
  TensorView C{DType::Q8_0, q8.data(), {cols, 33, 1, 1}, row_bytes(DType::Q8_0, cols)};
  std::vector<uint8_t> packed(static_cast<size_t>(rows16_bytes(A)));
  attach_rows16(A, packed.data());
  const auto X = random_floats(cols, rng);
  Activations acts;
  acts.set(X.data(), cols, 1, cols);
  std::vector<float> want_a(480), want_b(1000), want_c(33);
  const MatmulTask serial[] = {
      {&A, &acts, want_a.data(), 480}, {&B, &acts, want_b.data(), 1000}, {&C, &acts, want_c.data(), 33}};
  matmul_fast(serial, nullptr);
  for (int threads : {2, 3, 5, 8}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 20; ++rep) {
      std::vector<float> ya(480, NAN), yb(1000, NAN), yc(33, NAN);
      const MatmulTask tasks[] = {
          {&A, &acts, ya.data(), 480}, {&B, &acts, yb.data(), 1000}, {&C, &acts, yc.data(), 33}};
      matmul_fast(tasks, &pool);
      ASSERT_EQ(ya, want_a) << threads << " threads";
      ASSERT_EQ(yb, want_b) << threads << " threads";
      ASSERT_EQ(yc, want_c) << threads << " threads";
    }
  }
}

// Q4_K quads (long rows in runs of 64; block_layouts.h) give the bits of
// the Q4_K form, through the one-token streams (units of a run: 5 runs
// here, so the threads' runs and stolen units do not line up with
// theirs) for any thread count, beside a task in another form, and through
// the fused SwiGLU section (a down product in Q8_0: column groups of 512
// rows, here one partial group over all five runs), on
// each instruction set that packs the form.
void quads_equal_their_types_form(DType type, DType other, Rows16Layout quads, Rows16Layout plain, int& tested) {
  std::mt19937 rng(21);
  const int64_t cols = 2048, rows = 320;
  const auto a_rows = random_rows(type, cols, rows, row_bytes(type, cols), rng);
  const auto u_rows = random_rows(type, cols, rows, row_bytes(type, cols), rng);
  const auto b_rows = random_rows(other, cols, 48, row_bytes(other, cols), rng);
  const auto X = random_floats(cols, rng);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    SCOPED_TRACE(isa);
    TensorView A{type, a_rows.data(), {cols, rows, 1, 1}, row_bytes(type, cols)};
    TensorView U{type, u_rows.data(), {cols, rows, 1, 1}, row_bytes(type, cols)};
    TensorView B{other, b_rows.data(), {cols, 48, 1, 1}, row_bytes(other, cols)};
    if (rows16_layout(A) != quads || !have_fast_rows16(other)) continue;
    ++tested;
    std::vector<uint8_t> a_quads(static_cast<size_t>(rows16_bytes(A))), u_quads(a_quads.size()),
        a_plain(a_quads.size()), u_plain(a_quads.size()), b_packed(static_cast<size_t>(rows16_bytes(B)));
    attach_rows16(B, b_packed.data());
    // The type's form's products, on one thread: what the quads must give.
    pack_rows16(A, a_plain.data(), plain);
    pack_rows16(U, u_plain.data(), plain);
    A.rows16 = a_plain.data();
    A.rows16_layout = plain;
    U.rows16 = u_plain.data();
    U.rows16_layout = plain;
    Activations acts;
    acts.set(X.data(), cols, 1, cols);
    std::vector<float> want_a(rows), want_b(48), want_gate(rows), want_up(rows);
    const MatmulTask serial[] = {{&A, &acts, want_a.data(), rows}, {&B, &acts, want_b.data(), 48}};
    matmul_fast(serial, nullptr);
    const MatmulTask steps[] = {{&A, &acts, want_gate.data(), rows}, {&U, &acts, want_up.data(), rows}};
    matmul_fast(steps, nullptr);
    silu_mul(want_gate.data(), want_up.data(), rows);

    attach_rows16(A, a_quads.data());
    attach_rows16(U, u_quads.data());
    ASSERT_EQ(A.rows16_layout, quads);
    ASSERT_NE(a_quads, a_plain);  // the blocks are where the form puts them
    std::vector<float> single(rows, NAN);
    matmul_fast(A, acts, single.data(), nullptr);
    ASSERT_EQ(single, want_a) << "one thread";
    for (int threads : {2, 3, 5, 8}) {
      ThreadPool pool(threads);
      for (int rep = 0; rep < 10; ++rep) {
        std::vector<float> ya(rows, NAN), yb(48, NAN), gate(rows, NAN), up(rows, NAN);
        const MatmulTask tasks[] = {{&A, &acts, ya.data(), rows}, {&B, &acts, yb.data(), 48}};
        matmul_fast(tasks, &pool);
        ASSERT_EQ(ya, want_a) << threads << " threads";
        ASSERT_EQ(yb, want_b) << threads << " threads";
        Activations hidden;
        hidden.set(gate.data(), rows, 1, rows);
        swiglu_fast(A, U, acts, gate.data(), up.data(), hidden, DType::Q8_0, &pool);
        ASSERT_EQ(gate, want_gate) << threads << " threads, SwiGLU";
      }
    }
  }
}

// The quads forms of Q4_K and Q6_K (one type's matrices A and U), each beside
// a matrix B of the other type in its own form (48 rows: no quads).
TEST(FastMatmul, QuadsEqualTheirTypesFormForAnyThreadCount) {
  IsaGuard guard;
  struct Case {
    DType type, other;
    Rows16Layout quads, plain;
  };
  int tested = 0;
  for (const Case& c : {Case{DType::Q4_K, DType::Q6_K, Rows16Layout::Q4_K_Quads, Rows16Layout::Q4_K},
                        Case{DType::Q6_K, DType::Q4_K, Rows16Layout::Q6_K_Quads, Rows16Layout::Q6_K_SixBit}}) {
    SCOPED_TRACE(dtype_name(c.type));
    quads_equal_their_types_form(c.type, c.other, c.quads, c.plain, tested);
  }
  if (tested == 0) GTEST_SKIP() << "no instruction set here packs a quads form";
}

// The fused SwiGLU section gives the bits of the three steps one after
// another (both products, SiLU times up, the down product's quantizing) for
// any thread count, with runs and column groups that do not line up: 80
// units of 16 rows, Q8_256 groups of 16 units, Q8_32 groups of 32 (the last
// one half). Checked through the down product's output, which reads every
// derived array of the quantized form.
TEST(FastMatmul, SwigluEqualsTheStepsOneAfterAnother) {
  std::mt19937 rng(12);
  const int64_t cols = 512, ff = 1280;
  const auto gate_rows = random_rows(DType::Q4_K, cols, ff, row_bytes(DType::Q4_K, cols), rng);
  const auto up_rows = random_rows(DType::Q6_K, cols, ff, row_bytes(DType::Q6_K, cols), rng);
  TensorView G{DType::Q4_K, gate_rows.data(), {cols, ff, 1, 1}, row_bytes(DType::Q4_K, cols)};
  TensorView U{DType::Q6_K, up_rows.data(), {cols, ff, 1, 1}, row_bytes(DType::Q6_K, cols)};
  std::vector<uint8_t> packed(static_cast<size_t>(rows16_bytes(G)));
  attach_rows16(G, packed.data());
  const auto X = random_floats(cols, rng);
  Activations acts;
  acts.set(X.data(), cols, 1, cols);
  for (DType down_type : {DType::Q4_K, DType::Q8_0, DType::F16}) {
    const auto down_rows = random_rows(down_type, ff, 48, row_bytes(down_type, ff), rng);
    const TensorView D{down_type, down_rows.data(), {ff, 48, 1, 1}, row_bytes(down_type, ff)};
    // The steps one after another, on one thread.
    std::vector<float> want_gate(ff), want_up(ff), want_y(48);
    const MatmulTask steps[] = {{&G, &acts, want_gate.data(), ff}, {&U, &acts, want_up.data(), ff}};
    matmul_fast(steps, nullptr);
    silu_mul(want_gate.data(), want_up.data(), ff);
    Activations want_hidden;
    want_hidden.set(want_gate.data(), ff, 1, ff);
    matmul_fast(D, want_hidden, want_y.data(), nullptr);
    for (int threads : {1, 2, 3, 5, 8}) {
      ThreadPool pool(threads);
      for (int rep = 0; rep < 10; ++rep) {
        std::vector<float> gate(ff, NAN), up(ff, NAN), y(48, NAN);
        Activations hidden;
        hidden.set(gate.data(), ff, 1, ff);
        swiglu_fast(G, U, acts, gate.data(), up.data(), hidden, down_type, &pool);
        ASSERT_EQ(gate, want_gate) << threads << " threads, down " << dtype_name(down_type);
        matmul_fast(D, hidden, y.data(), nullptr);
        ASSERT_EQ(y, want_y) << threads << " threads, down " << dtype_name(down_type);
      }
    }
  }
  // What it cannot do is refused with the reason.
  std::vector<float> gate(ff), up(ff);
  Activations hidden;
  hidden.set(up.data(), ff, 1, ff);
  ThreadPool pool(2);
  EXPECT_THROW(swiglu_fast(G, U, acts, gate.data(), up.data(), hidden, DType::Q4_K, &pool), Error);  // not the gate row
  hidden.set(gate.data(), ff, 1, ff);
  const TensorView short_up{DType::Q6_K, up_rows.data(), {cols, ff - 16, 1, 1}, row_bytes(DType::Q6_K, cols)};
  EXPECT_THROW(swiglu_fast(G, short_up, acts, gate.data(), up.data(), hidden, DType::Q4_K, &pool), Error);
}

// The prefetch hints for a one-token product point where each thread's run
// of units will start: thread t of T at unit n_units * t / T of the tasks'
// rows in order, in the packed copy when there is one, for at most the
// requested bytes and the run's units in that matrix.
TEST(FastMatmul, NextProductHintsPointAtEachThreadsRun) {
  std::mt19937 rng(4);
  const int64_t cols = 512;
  const auto q4k = random_rows(DType::Q4_K, cols, 112, row_bytes(DType::Q4_K, cols), rng);  // 7 units
  const auto q8 = random_rows(DType::Q8_0, cols, 56, row_bytes(DType::Q8_0, cols), rng);    // 4 units, one partial
  TensorView A{DType::Q4_K, q4k.data(), {cols, 112, 1, 1}, row_bytes(DType::Q4_K, cols)};
  TensorView B{DType::Q8_0, q8.data(), {cols, 56, 1, 1}, row_bytes(DType::Q8_0, cols)};
  std::vector<uint8_t> packed(static_cast<size_t>(rows16_bytes(A)));
  pack_rows16(A, packed.data(), Rows16Layout::Q4_K);
  const TensorView* weights[] = {&A, &B};
  const int64_t group_bytes = static_cast<int64_t>(packed.size()) / 7;

  ThreadPool pool(3);  // 11 units: runs start at units 0, 3 and 7
  prefetch_next_product(pool, weights, 1 << 20);
  EXPECT_EQ(pool.next_prefetch(0), std::make_pair(static_cast<const void*>(A.row(0)), 3 * 16 * A.row_stride));
  EXPECT_EQ(pool.next_prefetch(1), std::make_pair(static_cast<const void*>(A.row(48)), 4 * 16 * A.row_stride));
  EXPECT_EQ(pool.next_prefetch(2), std::make_pair(static_cast<const void*>(B.row(0)), 4 * 16 * B.row_stride));

  A.rows16 = packed.data();  // the kernels read the packed copy: so do the hints
  prefetch_next_product(pool, weights, 1000);
  EXPECT_EQ(pool.next_prefetch(0), std::make_pair(static_cast<const void*>(packed.data()), int64_t{1000}));
  EXPECT_EQ(pool.next_prefetch(1),
            std::make_pair(static_cast<const void*>(packed.data() + 3 * group_bytes), int64_t{1000}));
  EXPECT_EQ(pool.next_prefetch(2), std::make_pair(static_cast<const void*>(B.row(0)), int64_t{1000}));

  // The hints are the next section's: after it, none is left.
  Activations acts;
  const auto X = random_floats(cols, rng);
  acts.set(X.data(), cols, 1, cols);
  std::vector<float> y(112);
  const MatmulTask tasks[] = {{&A, &acts, y.data(), 112}};
  matmul_fast(tasks, &pool);
  for (int t = 0; t < 3; ++t) EXPECT_EQ(pool.next_prefetch(t).second, 0);
}

// -------------------------------------------------------------- attention

using AttentionCase = test_support::AttentionShape;

// Attention of c's queries q over a cache (k, v) of kv_type, rows kv_stride
// values apart, by the scalar reference or the active ISA. The query heads
// lie kHeadGap values apart with NaN between them and after the last, and
// the output heads likewise with a marker: a kernel that reads a query past
// its head size (the last one's past its buffer) gets NaN scores, and one
// that writes past an output head fails here.
constexpr int64_t kHeadGap = 3, kGuard = 64;
std::vector<float> attend(const AttentionCase& c, const std::vector<float>& q, DType kv_type, const void* k,
                          const void* v, int64_t kv_stride, bool reference) {
  const int64_t heads = static_cast<int64_t>(c.n_tokens) * c.n_heads, stride = c.head_dim + kHeadGap;
  std::vector<float> q_gapped(static_cast<size_t>(heads * stride + kGuard), NAN);
  for (int64_t h = 0; h < heads; ++h)
    std::copy_n(q.begin() + h * c.head_dim, c.head_dim, q_gapped.begin() + h * stride);
  constexpr float kMarker = -12345.0f;
  std::vector<float> out_gapped(q_gapped.size(), kMarker);
  const AttentionArgs a =
      test_support::attention_args(c, q_gapped.data(), out_gapped.data(), stride, kv_type, k, v, kv_stride);
  if (reference) {
    scalar::attention(a);
  } else {
    AttentionScratch scratch;
    attention(a, scratch);
  }
  std::vector<float> out(q.size(), NAN);
  for (int64_t h = 0; h < heads; ++h) {
    std::copy_n(out_gapped.begin() + h * stride, c.head_dim, out.begin() + h * c.head_dim);
    for (int64_t i = h * stride + c.head_dim; i < (h + 1) * stride; ++i)
      EXPECT_EQ(out_gapped[static_cast<size_t>(i)], kMarker) << "written past output head " << h;
  }
  for (size_t i = static_cast<size_t>(heads * stride); i < out_gapped.size(); ++i)
    EXPECT_EQ(out_gapped[i], kMarker) << "written past the last output head";
  return out;
}

// Runs attention over a random cache of n_past + n_tokens positions (F32,
// or rounded to F16).
std::vector<float> run_attention(const AttentionCase& c, DType kv_type, const std::vector<float>& q,
                                 const std::vector<float>& k, const std::vector<float>& v, bool reference) {
  const int64_t kv_stride = c.head_dim + 5;  // rows of a wider cache
  const int64_t positions = c.n_past + c.n_tokens;
  // NaN in the 5 values after each row's head: a kernel that reads a key or
  // value past the head size gets NaN.
  std::vector<float> k_gapped(k), v_gapped(v);
  for (int64_t j = 0; j < positions; ++j)
    for (int64_t i = c.head_dim; i < kv_stride; ++i)
      k_gapped[static_cast<size_t>(j * kv_stride + i)] = v_gapped[static_cast<size_t>(j * kv_stride + i)] = NAN;
  if (kv_type != DType::F16) return attend(c, q, kv_type, k_gapped.data(), v_gapped.data(), kv_stride, reference);
  std::vector<uint16_t> k16(static_cast<size_t>(positions * kv_stride)), v16(k16.size());
  for (size_t i = 0; i < k16.size(); ++i) {
    k16[i] = f32_to_fp16(k_gapped[i]);
    v16[i] = f32_to_fp16(v_gapped[i]);
  }
  return attend(c, q, kv_type, k16.data(), v16.data(), kv_stride, reference);
}

TEST(Attention, SimdMatchesReferenceWithF32AndF16Cache) {
  IsaGuard guard;
  std::mt19937 rng(17);
  // One token (generation) reads the cache directly; several go through
  // converted blocks: both, head sizes with and without a partial vector.
  const AttentionCase cases[] = {{1, 1, 16, 0},  {1, 2, 128, 130}, {7, 3, 64, 0},    {5, 6, 128, 61}, {3, 2, 80, 200},
                                 {9, 1, 16, 64}, {1, 6, 72, 45},   {1, 5, 128, 300}, {4, 2, 40, 33}};
  for (const AttentionCase& c : cases) {
    const int64_t positions = c.n_past + c.n_tokens;
    const auto q = random_floats(static_cast<int64_t>(c.n_tokens) * c.n_heads * c.head_dim, rng, 2.0f);
    const auto k = random_floats(positions * (c.head_dim + 5), rng, 2.0f);
    const auto v = random_floats(positions * (c.head_dim + 5), rng);
    for (DType kv : {DType::F32, DType::F16}) {
      const auto want = run_attention(c, kv, q, k, v, true);
      for (const std::string& isa : available_isas())
        for (const CpuTuning tuning : tunings_for(isa)) {
          ASSERT_TRUE(force_isa(isa));
          force_cpu_tuning(tuning);
          SCOPED_TRACE(isa + (tuning.avx512_attention ? "" : " (AVX2 attention)") +
                       " tokens=" + std::to_string(c.n_tokens) + " heads=" + std::to_string(c.n_heads) +
                       " dim=" + std::to_string(c.head_dim) + " past=" + std::to_string(c.n_past) +
                       (kv == DType::F16 ? " F16" : " F32"));
          const auto got = run_attention(c, kv, q, k, v, false);
          for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 + 2e-5 * std::fabs(want[i])) << i;
        }
    }
    // An F16 cache changes the result only by the rounding of keys and
    // values to fp16 (relative 2^-11 each).
    const auto exact = run_attention(c, DType::F32, q, k, v, true);
    const auto half = run_attention(c, DType::F16, q, k, v, true);
    for (size_t i = 0; i < exact.size(); ++i) ASSERT_NEAR(half[i], exact[i], 5e-3) << i;
  }
}

// A Q8_0 cache: rows of ggml's blocks, kv_stride (a multiple of 32) values
// apart; the same queries, keys and values as run_attention's.
std::vector<float> run_attention_q8(const AttentionCase& c, int64_t kv_stride, const std::vector<float>& q,
                                    const std::vector<float>& k, const std::vector<float>& v, bool reference) {
  const int64_t positions = c.n_past + c.n_tokens, row_bytes = kv_row_bytes(DType::Q8_0, kv_stride);
  std::vector<uint8_t> k8(static_cast<size_t>(positions * row_bytes)), v8(k8.size());
  for (int64_t j = 0; j < positions; ++j) {
    quantize_q8_0_row(&k[static_cast<size_t>(j * kv_stride)], kv_stride, &k8[static_cast<size_t>(j * row_bytes)]);
    quantize_q8_0_row(&v[static_cast<size_t>(j * kv_stride)], kv_stride, &v8[static_cast<size_t>(j * row_bytes)]);
  }
  return attend(c, q, DType::Q8_0, k8.data(), v8.data(), kv_stride, reference);
}

// The reference quantizes the query as the kernels do and sums the same
// integers, so every ISA matches it to float rounding. Odd head counts
// (a row scored twice), key counts off the blocks of 4 and 64, several
// key blocks, and a long context.
TEST(Attention, SimdMatchesReferenceWithQ8Cache) {
  IsaGuard guard;
  std::mt19937 rng(29);
  const AttentionCase cases[] = {{1, 1, 32, 0},    {1, 2, 128, 130}, {7, 3, 64, 0},   {5, 6, 128, 61},
                                 {1, 5, 128, 300}, {4, 2, 96, 33},   {2, 2, 64, 3000}};
  for (const AttentionCase& c : cases) {
    const int64_t positions = c.n_past + c.n_tokens, kv_stride = c.head_dim + 32;
    const auto q = random_floats(static_cast<int64_t>(c.n_tokens) * c.n_heads * c.head_dim, rng, 2.0f);
    const auto k = random_floats(positions * kv_stride, rng, 2.0f);
    const auto v = random_floats(positions * kv_stride, rng);
    const auto want = run_attention_q8(c, kv_stride, q, k, v, true);
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      SCOPED_TRACE(isa + " tokens=" + std::to_string(c.n_tokens) + " heads=" + std::to_string(c.n_heads) +
                   " dim=" + std::to_string(c.head_dim) + " past=" + std::to_string(c.n_past));
      const auto got = run_attention_q8(c, kv_stride, q, k, v, false);
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 + 2e-5 * std::fabs(want[i])) << i;
    }
    // Against exact attention on the unquantized cache: 8-bit keys, values
    // and query (each value within half a step, 1/254 of its block's
    // largest) move the outputs, averages of values within +-1, by less
    // than 0.02 here.
    const auto exact = attend(c, q, DType::F32, k.data(), v.data(), kv_stride, true);
    double worst = 0;
    for (size_t i = 0; i < exact.size(); ++i)
      worst = std::max(worst, std::fabs(static_cast<double>(want[i]) - exact[i]));
    EXPECT_LT(worst, 0.02);
    EXPECT_GT(worst, 0.0);  // the cache is quantized
  }
}

TEST(Attention, Q8CacheNeedsWholeBlocks) {
  const std::vector<float> q(80, 0.5f), out_q(80);
  std::vector<uint8_t> cache(200);
  std::vector<float> out(80);
  AttentionArgs a{q.data(), 80, 80, out.data(), 80, 80, 1, 1, 80, 0, cache.data(), cache.data(), DType::Q8_0, 80, 1.0f};
  AttentionScratch scratch;
  try {
    attention(a, scratch);
    FAIL() << "a head size of 80 was taken for a Q8_0 cache";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 32"), std::string::npos) << e.what();
  }
  a.kv_type = DType::Q4_K;
  EXPECT_THROW(attention(a, scratch), Error);
}

// ggml's Q8_0 blocks: dequantized, each value is within half a step of the
// input, the block's largest magnitude maps to +-127, and the scale is
// amax / 127 in fp16.
TEST(Attention, QuantizeQ8_0RowMatchesItsDefinition) {
  std::mt19937 rng(31);
  auto x = random_floats(256, rng, 3.0f);
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block
  std::vector<uint8_t> blocks(static_cast<size_t>(kv_row_bytes(DType::Q8_0, 256)));
  ASSERT_EQ(blocks.size(), 8u * 34);
  quantize_q8_0_row(x.data(), 256, blocks.data());
  std::vector<float> back(256);
  dequantize_row(DType::Q8_0, blocks.data(), back.data(), 256);
  for (int b = 0; b < 8; ++b) {
    float amax = 0;
    int largest = 0;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[32 * b + i]));
    uint16_t d;
    std::memcpy(&d, &blocks[34 * b], 2);
    EXPECT_EQ(d, f32_to_fp16(amax / 127.0f)) << b;
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(blocks[34 * b + 2 + i]);
      largest = std::max(largest, std::abs(static_cast<int>(q)));
      ASSERT_LE(std::fabs(back[32 * b + i] - x[32 * b + i]), 0.5f * amax / 127.0f * 1.01f + 1e-7f) << b << " " << i;
    }
    EXPECT_EQ(largest, amax > 0 ? 127 : 0) << b;
  }
  EXPECT_THROW(quantize_q8_0_row(x.data(), 100, blocks.data()), Error);
}

// RMSNorm: the sum of squares in double on every ISA, so the results differ
// from the scalar reference only by the order of that sum; lengths with and
// without a partial vector, in place too.
TEST(RmsNorm, SimdMatchesScalar) {
  IsaGuard guard;
  std::mt19937 rng(12);
  for (int64_t n : {1, 7, 16, 100, 128, 1024, 1536, 3001}) {
    const auto x = random_floats(n, rng, 3.0f);
    const auto w = random_floats(n, rng);
    std::vector<float> want(static_cast<size_t>(n));
    scalar::rms_norm(x.data(), w.data(), want.data(), n, 1e-6f);
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-6);
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(want[i], x[i] * scale * w[i], 1e-6 * std::fabs(x[i] * scale) + 1e-7);
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      SCOPED_TRACE(isa + " n=" + std::to_string(n));
      std::vector<float> got(static_cast<size_t>(n));
      rms_norm(x.data(), w.data(), got.data(), n, 1e-6f);
      for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6f * std::fabs(want[i]) + 1e-12f) << i;
      std::vector<float> in_place = x;
      rms_norm(in_place.data(), w.data(), in_place.data(), n, 1e-6f);
      ASSERT_EQ(in_place, got);
    }
  }
}

// Long context: memory does not depend on it, and the online softmax over
// many key blocks agrees with the two-pass reference.
TEST(Attention, LongContext) {
  IsaGuard guard;
  std::mt19937 rng(23);
  const AttentionCase c{2, 2, 64, 3000};
  const int64_t positions = c.n_past + c.n_tokens;
  const auto q = random_floats(static_cast<int64_t>(c.n_tokens) * c.n_heads * c.head_dim, rng, 3.0f);
  const auto k = random_floats(positions * (c.head_dim + 5), rng, 2.0f);
  const auto v = random_floats(positions * (c.head_dim + 5), rng);
  const auto want = run_attention(c, DType::F16, q, k, v, true);
  for (const std::string& isa : available_isas())
    for (const CpuTuning tuning : tunings_for(isa)) {
      ASSERT_TRUE(force_isa(isa));
      force_cpu_tuning(tuning);
      const auto got = run_attention(c, DType::F16, q, k, v, false);
      for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 + 2e-5 * std::fabs(want[i])) << isa;
    }
}

// ------------------------------------------------------------------- SiLU

TEST(SiluMul, SimdMatchesScalar) {
  IsaGuard guard;
  std::mt19937 rng(4);
  auto g = random_floats(1003, rng, 12.0f);
  const auto u = random_floats(1003, rng, 2.0f);
  g[0] = -120.0f;  // e^120 overflows: silu is -0
  g[1] = 100.0f;
  g[2] = 0.0f;
  std::vector<float> want = g;
  scalar::silu_mul(want.data(), u.data(), 1003);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    std::vector<float> got = g;
    silu_mul(got.data(), u.data(), 1003);
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-6f * (1.0f + std::fabs(want[i]))) << isa << " " << i;
  }
}

// ------------------------------------------------- logit rows

// The scalar reference against sums written out here in long double, then
// every ISA against the reference: rows whose spread passes the -87 floor,
// masked (-inf) entries, lengths around the vector steps and a vocabulary's.
TEST(LogitRows, SoftmaxSumsMatchReference) {
  IsaGuard guard;
  std::mt19937 rng(31);
  for (int64_t n : {1, 7, 8, 15, 16, 31, 33, 100, 1023, 1024, 1025, 2077, 151936}) {
    for (float spread : {0.5f, 8.0f, 60.0f}) {
      std::normal_distribution<float> logit(3.0f, spread);
      std::vector<float> x(static_cast<size_t>(n));
      for (float& v : x) v = logit(rng);
      if (n > 4) x[static_cast<size_t>(n / 3)] = -INFINITY;
      if (n > 40) x[static_cast<size_t>(n - 2)] = x[0] - 200.0f;  // below the floor: counts as 0
      SCOPED_TRACE("n=" + std::to_string(n) + " spread=" + std::to_string(spread));
      const SoftmaxSums want = scalar::softmax_sums(x.data(), n);
      float max = -INFINITY;
      for (float v : x) max = std::max(max, v);
      long double sum = 0, weighted = 0;
      for (float v : x) {
        const long double d = static_cast<long double>(v) - max;
        if (d < -87) continue;
        sum += std::exp(d);
        weighted += std::exp(d) * d;
      }
      ASSERT_TRUE(want.finite);
      ASSERT_EQ(want.max, max);
      ASSERT_NEAR(want.sum, static_cast<double>(sum), 1e-12 * static_cast<double>(sum));
      ASSERT_NEAR(want.weighted, static_cast<double>(weighted), 1e-12 * (1.0 - static_cast<double>(weighted)));
      for (const std::string& isa : available_isas()) {
        ASSERT_TRUE(force_isa(isa));
        SCOPED_TRACE(isa);
        const SoftmaxSums got = softmax_sums(x.data(), n);
        ASSERT_TRUE(got.finite);
        ASSERT_EQ(got.max, want.max);
        // Float lanes over blocks of 1024 terms (each <= 1) and exp_ps's
        // few ulps: a relative 2e-5 bounds both.
        EXPECT_NEAR(got.sum, want.sum, 2e-5 * want.sum);
        EXPECT_NEAR(got.weighted, want.weighted, 2e-5 * (1.0 - want.weighted));
      }
    }
  }
}

TEST(LogitRows, SoftmaxSumsFlagNanAndInfinity) {
  IsaGuard guard;
  for (int64_t n : {5, 64, 1000}) {
    for (int64_t at : {int64_t{0}, n / 2, n - 1}) {
      for (float bad : {NAN, INFINITY}) {
        std::vector<float> x(static_cast<size_t>(n), 1.0f);
        x[static_cast<size_t>(at)] = bad;
        for (const std::string& isa : available_isas()) {
          ASSERT_TRUE(force_isa(isa));
          EXPECT_FALSE(softmax_sums(x.data(), n).finite) << isa << " n=" << n << " at=" << at << " " << bad;
        }
      }
    }
    const std::vector<float> masked(static_cast<size_t>(n), -INFINITY);
    for (const std::string& isa : available_isas()) {
      ASSERT_TRUE(force_isa(isa));
      const SoftmaxSums all_masked = softmax_sums(masked.data(), n);
      EXPECT_TRUE(all_masked.finite) << isa;
      EXPECT_EQ(all_masked.max, -INFINITY) << isa;
      EXPECT_EQ(all_masked.sum, 0.0) << isa;
    }
  }
  EXPECT_THROW(softmax_sums(nullptr, 0), Error);
}

TEST(LogitRows, FindAboveMatchesReference) {
  IsaGuard guard;
  std::mt19937 rng(32);
  std::normal_distribution<float> logit(0.0f, 1.0f);
  for (int64_t n : {1, 31, 32, 33, 100, 4099}) {
    std::vector<float> x(static_cast<size_t>(n));
    for (float& v : x) v = logit(rng);
    x[static_cast<size_t>(n / 2)] = NAN;  // never above anything
    for (float threshold : {-10.0f, 0.0f, 2.0f, 3.5f, 100.0f}) {
      for (int64_t from : {int64_t{0}, int64_t{1}, n / 2, n - 1, n, n + 5}) {
        const int64_t want = scalar::find_above(x.data(), from, n, threshold);
        int64_t check = n;
        for (int64_t i = std::max<int64_t>(from, 0); i < n; ++i) {
          if (x[static_cast<size_t>(i)] > threshold) {
            check = i;
            break;
          }
        }
        ASSERT_EQ(want, std::min(check, n)) << n << " " << threshold << " " << from;
        for (const std::string& isa : available_isas()) {
          ASSERT_TRUE(force_isa(isa));
          ASSERT_EQ(find_above(x.data(), from, n, threshold), want)
              << isa << " " << n << " " << threshold << " " << from;
        }
      }
    }
  }
}

// ------------------------------------------- matrices packed by 16 rows

// Each packed form of a type, for `type`.
std::vector<Rows16Layout> rows16_layouts(DType type) {
  if (type == DType::Q4_K) return {Rows16Layout::Q4_K, Rows16Layout::Q4_K_Quads};
  if (type == DType::Q8_0) return {Rows16Layout::Q8_0};
  if (type == DType::Q4_0) return {Rows16Layout::Q4_0};
  if (type == DType::Q5_0) return {Rows16Layout::Q5_0_AsQ8_0};
  return {Rows16Layout::Q6_K_SixBit, Rows16Layout::Q6_K_Quads};
}

// The packed matrix-vector products equal the scalar fast-path reference on
// the original rows, on every ISA (the scalar table runs the packed
// references), for every row range of whole groups (of whole runs of four
// in the quads forms), in each packed form of the type (an ISA given
// the form of another runs that form's reference).
class Rows16 : public ::testing::TestWithParam<DType> {};

TEST_P(Rows16, EqualsReferenceOnOriginalRows) {
  const DType type = GetParam();
  IsaGuard guard;
  std::mt19937 rng(16);
  // 257 blocks: the AVX2 Q4_K and Q6_K kernels work in slices of 256
  // blocks, the Q8_0 one in slices of 16384 columns.
  for (int64_t cols : {int64_t{256}, int64_t{1024}, int64_t{3072}, int64_t{257 * 256}}) {
    const int64_t rows = 128;
    const int64_t stride = row_bytes(type, cols) + 3;  // unaligned rows
    auto data = random_rows(type, cols, rows, stride, rng);
    clear_minus_128(type, data, cols, rows, stride);
    const TensorView W = TensorView::matrix(type, data.data(), cols, rows, stride);
    ASSERT_TRUE(can_pack_rows16(W));
    auto x = random_floats(cols, rng);
    x[5] = 40.0f;  // one large activation: the block's 8-bit scale is set by it
    Activations acts;
    acts.set(x.data(), cols, 1, cols);
    acts.prepare_for(type, nullptr);
    const QuantizedActs& q = acts.quantized(act_format_for(type));
    for (const Rows16Layout layout : rows16_layouts(type)) {
      std::vector<uint8_t> packed(static_cast<size_t>(rows16_bytes(W)));
      // Q4_K adds one 64-byte run of unpacked scales and minimums per 16
      // blocks; the other types' packed forms are exactly their rows.
      const int64_t block_bytes = type == DType::Q4_K   ? 144 * 16 + 64
                                  : type == DType::Q6_K ? 210 * 16
                                  : type == DType::Q8_0 ? 34 * 16 * 8
                                  : type == DType::Q5_0 ? 34 * 16 * 8  // widened to the Q8_0 form
                                                        : 18 * 16 * 8;
      ASSERT_EQ(packed.size(), static_cast<size_t>(rows / 16 * (cols / 256) * block_bytes));
      pack_rows16(W, packed.data(), layout);
      for (const std::string& isa : available_isas())
        for (const CpuTuning tuning : tunings_for(isa)) {
          ASSERT_TRUE(force_isa(isa));
          force_cpu_tuning(tuning);
          const bool quads = layout == Rows16Layout::Q4_K_Quads || layout == Rows16Layout::Q6_K_Quads;
          const int64_t run = quads ? 64 : 16;
          for (auto [r0, r1] : {std::pair<int64_t, int64_t>{0, rows}, {run, 2 * run}, {rows - run, rows}, {run, run}}) {
            SCOPED_TRACE(isa + (tuning.prefetch_packed ? " prefetching" : "") + " form " +
                         std::to_string(static_cast<int>(layout)) + " cols=" + std::to_string(cols) + " rows " +
                         std::to_string(r0) + ".." + std::to_string(r1));
            std::vector<float> y(static_cast<size_t>(rows), NAN);
            gemv_rows16(layout, packed.data(), cols, r0, r1, acts, y.data());
            for (int64_t r = 0; r < rows; ++r) {
              if (r < r0 || r >= r1) {
                ASSERT_TRUE(std::isnan(y[r])) << "row " << r << " outside the range was written";
                continue;
              }
              ASSERT_NEAR(y[r], scalar::dot_q8(type, W.row(r), q, 0), fast_tolerance(type, W.row(r), q, 0))
                  << "row " << r;
            }
          }
        }
    }
  }
}

// A packed copy labelled with another type's form would be read as that
// type: the product refuses it.
TEST(Rows16Types, MatmulRefusesACopyInAnotherTypesForm) {
  std::mt19937 rng(17);
  const int64_t cols = 256, rows = 16;
  const auto data = random_rows(DType::Q4_K, cols, rows, row_bytes(DType::Q4_K, cols), rng);
  TensorView W = TensorView::matrix(DType::Q4_K, data.data(), cols, rows, row_bytes(DType::Q4_K, cols));
  std::vector<uint8_t> packed(static_cast<size_t>(rows16_bytes(W)));
  pack_rows16(W, packed.data(), Rows16Layout::Q4_K);
  W.rows16 = packed.data();
  W.rows16_layout = Rows16Layout::Q6_K_SixBit;
  const auto x = random_floats(cols, rng);
  Activations acts;
  acts.set(x.data(), cols, 1, cols);
  std::vector<float> y(static_cast<size_t>(rows));
  EXPECT_THROW(matmul_fast(W, acts, y.data(), nullptr), Error);
  W.rows16_layout = Rows16Layout::Q4_K;
  EXPECT_NO_THROW(matmul_fast(W, acts, y.data(), nullptr));
}

// Each instruction set packs Q6_K in the form its own kernel reads (the
// AVX2 kernel has no ternary logic and reads the six-bit form); those with
// a SIMD kernel for a form are worth packing for.
TEST(Rows16Types, EachIsaPacksTheFormItReads) {
  IsaGuard guard;
  std::mt19937 rng(18);
  const auto data = random_rows(DType::Q6_K, 256, 16, row_bytes(DType::Q6_K, 256), rng);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    SCOPED_TRACE(isa);
    EXPECT_EQ(rows16_layout(DType::Q4_K), Rows16Layout::Q4_K);
    EXPECT_EQ(rows16_layout(DType::Q6_K), Rows16Layout::Q6_K_SixBit);
    EXPECT_EQ(have_fast_rows16(DType::Q6_K), isa != "scalar");
    // Q8_0 (and Q5_0, widened into its form) wherever there is a SIMD
    // kernel; Q4_0 only on AVX2 (AVX-512 multiplies its stored rows).
    EXPECT_EQ(rows16_layout(DType::Q8_0), Rows16Layout::Q8_0);
    EXPECT_EQ(have_fast_rows16(DType::Q8_0), isa != "scalar");
    EXPECT_EQ(rows16_layout(DType::Q4_0), Rows16Layout::Q4_0);
    EXPECT_EQ(have_fast_rows16(DType::Q4_0), isa == "avx2");
    EXPECT_EQ(rows16_layout(DType::Q5_0), Rows16Layout::Q5_0_AsQ8_0);
    EXPECT_EQ(have_fast_rows16(DType::Q5_0), isa != "scalar");
    // attach_rows16 packs in that form and says so.
    TensorView W = TensorView::matrix(DType::Q6_K, data.data(), 256, 16, row_bytes(DType::Q6_K, 256));
    std::vector<uint8_t> attached(static_cast<size_t>(rows16_bytes(W))), packed(attached.size());
    attach_rows16(W, attached.data());
    pack_rows16(W, packed.data(), rows16_layout(DType::Q6_K));
    EXPECT_EQ(W.rows16, attached.data());
    EXPECT_EQ(W.rows16_layout, rows16_layout(DType::Q6_K));
    EXPECT_EQ(attached, packed);
    // Q4_K and Q6_K rows of 2048 columns or more, in runs of 64 rows, in
    // their quads forms where the ISA has their kernels (the AVX-512 ones);
    // shorter rows or other row counts in the type's form.
    const bool quads = isa == "avx512" || isa == "avx512vnni";
    for (const auto& [type, quads_form] :
         {std::pair{DType::Q4_K, Rows16Layout::Q4_K_Quads}, std::pair{DType::Q6_K, Rows16Layout::Q6_K_Quads}}) {
      SCOPED_TRACE(dtype_name(type));
      const auto rows = random_rows(type, 2048, 64, row_bytes(type, 2048), rng);
      TensorView L = TensorView::matrix(type, rows.data(), 2048, 64, row_bytes(type, 2048));
      EXPECT_EQ(rows16_layout(L), quads ? quads_form : rows16_layout(type));
      std::vector<uint8_t> l_attached(static_cast<size_t>(rows16_bytes(L))), l_packed(l_attached.size());
      attach_rows16(L, l_attached.data());
      pack_rows16(L, l_packed.data(), rows16_layout(L));
      EXPECT_EQ(L.rows16_layout, rows16_layout(L));
      EXPECT_EQ(l_attached, l_packed);
      EXPECT_EQ(rows16_layout(TensorView::matrix(type, rows.data(), 1792, 64, row_bytes(type, 1792))),
                rows16_layout(type));
      EXPECT_EQ(rows16_layout(TensorView::matrix(type, rows.data(), 2048, 48, row_bytes(type, 2048))),
                rows16_layout(type));
    }
  }
}

TEST_P(Rows16, RejectsShapesItCannotPack) {
  const DType type = GetParam();
  std::vector<uint8_t> data(static_cast<size_t>(row_bytes(type, 256) * 24));
  TensorView W = TensorView::matrix(type, data.data(), 256, 24, row_bytes(type, 256));  // not whole groups of 16
  EXPECT_FALSE(can_pack_rows16(W));
  std::vector<uint8_t> out(4096);
  EXPECT_THROW(pack_rows16(W, out.data(), rows16_layouts(type)[0]), Error);
  W.ne[1] = 16;
  EXPECT_TRUE(can_pack_rows16(W));
  // A form of the other type.
  EXPECT_THROW(pack_rows16(W, out.data(), type == DType::Q4_K ? Rows16Layout::Q6_K_SixBit : Rows16Layout::Q4_K), Error);
  Activations acts;
  const auto x = std::vector<float>(256, 0.5f);
  acts.set(x.data(), 256, 1, 256);
  acts.prepare_for(type, nullptr);
  float y[16];
  const Rows16Layout layout = rows16_layouts(type)[0];
  EXPECT_THROW(gemv_rows16(layout, out.data(), 256, 0, 8, acts, y), Error);                         // not a whole group
  EXPECT_THROW(gemv_rows16(layout, out.data(), 512, 0, 16, acts, y), Error);                        // n differs from x
  EXPECT_THROW(gemv_rows16(static_cast<Rows16Layout>(7), out.data(), 256, 0, 16, acts, y), Error);  // no such form
  for (const Rows16Layout quads : {Rows16Layout::Q4_K_Quads, Rows16Layout::Q6_K_Quads}) {
    if ((quads == Rows16Layout::Q4_K_Quads ? DType::Q4_K : DType::Q6_K) != type) continue;
    // The quads forms take runs of 64 rows only.
    EXPECT_THROW(pack_rows16(W, out.data(), quads), Error);  // 16 rows
    EXPECT_THROW(gemv_rows16(quads, out.data(), 256, 0, 16, acts, y), Error);
  }
}

// A Q8_0 matrix holding -128 is not packed (its sign cannot flip in a
// byte); its products stay exact through the stored rows' kernels.
TEST(Rows16Q8, MinusOneTwentyEightStaysInStoredRows) {
  IsaGuard guard;
  std::mt19937 rng(19);
  const int64_t cols = 512, rows = 32, stride = row_bytes(DType::Q8_0, cols);
  auto data = random_rows(DType::Q8_0, cols, rows, stride, rng);
  clear_minus_128(DType::Q8_0, data, cols, rows, stride);
  TensorView W = TensorView::matrix(DType::Q8_0, data.data(), cols, rows, stride);
  ASSERT_TRUE(can_pack_rows16(W));
  data[static_cast<size_t>(17 * stride + 5 * 34 + 2 + 9)] = 0x80;  // row 17, block 5, value 9
  EXPECT_FALSE(can_pack_rows16(W));
  std::vector<uint8_t> out(static_cast<size_t>(rows16_bytes(W)));
  EXPECT_THROW(pack_rows16(W, out.data(), Rows16Layout::Q8_0), Error);
  auto x = random_floats(cols, rng);
  x[5 * 32 + 9] = -3.0f;  // the -128 meets a negative activation
  Activations acts;
  acts.set(x.data(), cols, 1, cols);
  acts.prepare_for(DType::Q8_0, nullptr);
  const QuantizedActs& q = acts.quantized(ActFormat::Q8_32);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    std::vector<float> y(static_cast<size_t>(rows));
    matmul_fast(W, acts, y.data(), nullptr);
    for (int64_t r = 0; r < rows; ++r)
      ASSERT_NEAR(y[r], scalar::dot_q8(DType::Q8_0, W.row(r), q, 0), fast_tolerance(DType::Q8_0, W.row(r), q, 0))
          << isa << " row " << r;
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Rows16,
                         ::testing::Values(DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::Q4_0, DType::Q5_0),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

// Q6_K sub-block sums are signed and so are its scales: rows whose scales
// are all small and negative, and activations mostly of one sign, make the
// 16-bit halves of negative lane sums meet negative scales. Each such lane
// was off by one integer unit in the direct AVX-512 kernel (found by the
// packed kernel's model test), far below the tolerance of random scales.
TEST(Q6K, NegativeScalesAreExact) {
  IsaGuard guard;
  std::mt19937 rng(61);
  const int64_t cols = 1024, rows = 32;
  const int64_t stride = row_bytes(DType::Q6_K, cols);
  auto data = random_rows(DType::Q6_K, cols, rows, stride, rng);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols / 256; ++b)
      for (int s = 0; s < 16; ++s)
        data[static_cast<size_t>(r * stride + b * 210 + 192 + s)] = static_cast<uint8_t>(-1 - s % 3);
  const TensorView W = TensorView::matrix(DType::Q6_K, data.data(), cols, rows, stride);
  std::vector<uint8_t> six_bit(static_cast<size_t>(rows16_bytes(W)));
  pack_rows16(W, six_bit.data(), Rows16Layout::Q6_K_SixBit);
  std::vector<float> x(static_cast<size_t>(cols));
  for (auto& v : x) v = std::uniform_real_distribution<float>(0.2f, 1.0f)(rng);
  Activations acts;
  acts.set(x.data(), cols, 1, cols);
  acts.prepare_for(DType::Q6_K, nullptr);
  const QuantizedActs& q = acts.quantized(ActFormat::Q8_256);
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    std::vector<float> direct(static_cast<size_t>(rows)), from_six_bit(static_cast<size_t>(rows));
    matmul_fast_rows(W, acts, 0, rows, direct.data(), rows);
    gemv_rows16(Rows16Layout::Q6_K_SixBit, six_bit.data(), cols, 0, rows, acts, from_six_bit.data());
    for (int64_t r = 0; r < rows; ++r) {
      const double want = scalar::dot_q8(DType::Q6_K, W.row(r), q, 0);
      // Exact integer sums: only the float scaling of each block rounds.
      const double tolerance = 1e-6 * std::abs(want) + 1e-6;
      ASSERT_NEAR(direct[r], want, tolerance) << isa << " row " << r;
      ASSERT_NEAR(from_six_bit[r], want, tolerance) << isa << " packed (six-bit) row " << r;
    }
  }
}

// Q8_0 rows at the ends of the range (-128, -127, 127, 0) against
// activations at +-127 and 0: the multi-token kernels multiply |w| by the
// activation with w's sign folded in, and any pair sum that saturated or any
// sign taken wrongly would show here far beyond rounding. 864 columns: 27
// blocks, so the kernels' last group of eight blocks is a partial one.
TEST(Q8_0, ExtremeValuesAreExact) {
  IsaGuard guard;
  const int64_t cols = 864, rows = 7, n_tokens = 7;
  const int64_t stride = row_bytes(DType::Q8_0, cols);
  std::vector<uint8_t> data(static_cast<size_t>(rows * stride));
  const int8_t ends[] = {-128, -127, 127, 0};
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t b = 0; b < cols / 32; ++b) {
      uint8_t* block = data.data() + r * stride + b * 34;
      put_u16(data, static_cast<size_t>(block - data.data()), 0x3C00 + static_cast<uint16_t>(b % 5));  // about 1
      for (int i = 0; i < 32; ++i)
        block[2 + i] = static_cast<uint8_t>(r == 0 ? -128 : r == 1 ? 127 : ends[(i * r + b) % 4]);
    }
  const TensorView W = TensorView::matrix(DType::Q8_0, data.data(), cols, rows, stride);
  // Each token's blocks hold +-1 and 0 (quantized to +-127 and 0), with
  // signs that vary by token, block and position.
  std::vector<float> x(static_cast<size_t>(n_tokens * cols));
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t i = 0; i < cols; ++i) {
      const int64_t k = (i * (t + 1) + i / 32) % 3;
      x[t * cols + i] = t == 0 ? 1.0f : t == 1 ? -1.0f : k == 0 ? 1.0f : k == 1 ? -1.0f : 0.0f;
    }
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    // Prepared under this ISA: each has its own lane layout of the
    // activations (a process runs one ISA; only tests switch).
    Activations acts;
    acts.set(x.data(), cols, n_tokens, cols);
    std::vector<float> Y(static_cast<size_t>(n_tokens * rows));
    matmul_fast(W, acts, Y.data(), nullptr);
    if (multi_token_f32(DType::Q8_0)) {
      // Dequantized tiles times F32 tokens: exact products, float sums (a
      // sign taken wrongly would be off by at least 2 x 127).
      for (int64_t t = 0; t < n_tokens; ++t)
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_NEAR(Y[t * rows + r], scalar::dot(DType::Q8_0, W.row(r), &x[t * cols], cols),
                      f32_tolerance(DType::Q8_0, W.row(r), &x[t * cols], cols))
              << isa << " row " << r << " token " << t;
      continue;
    }
    const QuantizedActs& q = acts.quantized(ActFormat::Q8_32);
    for (int64_t t = 0; t < n_tokens; ++t)
      for (int64_t r = 0; r < rows; ++r) {
        const double want = scalar::dot_q8(DType::Q8_0, W.row(r), q, t);
        // Integer block sums are exact: only the float scaling and summing of
        // the block terms round (the kernels' sign correction adds up to
        // 128 x 32 per block to their size). A sign taken wrongly or a
        // saturated pair would be off by at least 127 x 128 x scale.
        double size = 0;
        for (int64_t b = 0; b < cols / 32; ++b) {
          const int8_t* w = reinterpret_cast<const int8_t*>(W.row(r) + b * 34 + 2);
          double magnitude = 128 * 32;
          for (int i = 0; i < 32; ++i) magnitude += std::abs(w[i] * q.qs(t)[32 * b + i]);
          uint16_t d;
          std::memcpy(&d, W.row(r) + b * 34, 2);
          size += std::abs(fp16_to_f32(d) * q.scales(t)[b]) * magnitude;
        }
        ASSERT_NEAR(Y[t * rows + r], want, 1e-6 * size) << isa << " row " << r << " token " << t;
      }
  }
}

// Other types have no packed form.
TEST(Rows16Types, OnlyQuantizedTypes) {
  for (const DType type : {DType::F16, DType::BF16, DType::F32}) {
    std::vector<uint8_t> data(static_cast<size_t>(row_bytes(type, 256) * 16));
    const TensorView W = TensorView::matrix(type, data.data(), 256, 16, row_bytes(type, 256));
    EXPECT_FALSE(can_pack_rows16(W)) << dtype_name(type);
    EXPECT_FALSE(have_fast_rows16(type)) << dtype_name(type);
  }
}

// ---------------------------------------------------------- fp16 rows

TEST(HalfRows, SimdEqualsScalar) {
  IsaGuard guard;
  std::mt19937 rng(2);
  auto x = random_floats(1000, rng, 70000.0f);  // some overflow to inf
  x[0] = 1e-7f;                                 // fp16 subnormal
  x[1] = -0.0f;
  for (const std::string& isa : available_isas()) {
    ASSERT_TRUE(force_isa(isa));
    for (int64_t n : {1, 15, 16, 17, 1000}) {
      std::vector<uint16_t> h(n);
      f32_to_f16_row(x.data(), h.data(), n);
      std::vector<float> back(n);
      f16_to_f32_row(h.data(), back.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(h[i], f32_to_fp16(x[i])) << isa << " " << i;
        ASSERT_EQ(back[i], fp16_to_f32(h[i])) << isa << " " << i;
      }
    }
  }
}

}  // namespace
}  // namespace glassbox::kernels
