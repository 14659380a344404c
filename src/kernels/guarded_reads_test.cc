// Every kernel reads only its inputs: each input is placed so that it ends
// (or starts) at an inaccessible page, and every instruction set this CPU
// runs is called on it with lengths off the vector widths. A read past the
// end faults and kills the test instead of reading whatever lies there; the
// sanitizers do not see such reads, because vector intrinsics are not
// instrumented (the AVX-512 attention once read each query past its head
// size, and past its buffer for the last row, which only showed as NaN when
// the bytes after the buffer happened to be NaN). Masked loads do not fault
// on their masked-out lanes, so correct kernels run here as anywhere.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/kernels_test_support.h"
#include "tensor/fp16.h"

namespace glassbox::kernels {
namespace {

// `bytes` of read-write memory that end right before an inaccessible page
// (Edge::End) or start right after one (Edge::Start).
enum class Edge { End, Start };

class GuardedBytes {
 public:
  GuardedBytes(size_t bytes, Edge edge) {
    const auto page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t body = (bytes + page - 1) / page * page;
    size_ = body + 2 * page;
    void* base = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::runtime_error("mmap failed");
    base_ = static_cast<uint8_t*>(base);
    if (mprotect(base_, page, PROT_NONE) != 0 || mprotect(base_ + page + body, page, PROT_NONE) != 0)
      throw std::runtime_error("mprotect failed");
    data_ = edge == Edge::End ? base_ + page + body - bytes : base_ + page;
  }
  ~GuardedBytes() { munmap(base_, size_); }
  GuardedBytes(const GuardedBytes&) = delete;
  GuardedBytes& operator=(const GuardedBytes&) = delete;

  uint8_t* data() { return data_; }
  template <typename T>
  T* as() {
    return reinterpret_cast<T*>(data_);
  }

 private:
  size_t size_ = 0;
  uint8_t* base_ = nullptr;
  uint8_t* data_ = nullptr;
};

// A guarded copy of v.
template <typename T>
struct Guarded {
  Guarded(const std::vector<T>& v, Edge edge) : bytes(v.size() * sizeof(T), edge) {
    std::memcpy(bytes.data(), v.data(), v.size() * sizeof(T));
  }
  T* get() { return bytes.as<T>(); }
  GuardedBytes bytes;
};

using test_support::available_isas;
using test_support::IsaGuard;
using test_support::kAllTypes;
using test_support::put_u16;
using test_support::random_floats;

// Random rows of `rows` x n values of `type`, rows back to back. Q8_0 without
// the value -128, as ggml writes it and the packed form needs it.
std::vector<uint8_t> random_rows(DType type, int64_t n, int64_t rows, std::mt19937& rng) {
  auto bytes = test_support::random_rows(type, n, rows, row_bytes(type, n), rng);
  test_support::clear_minus_128(type, bytes, n, rows, row_bytes(type, n));
  return bytes;
}

// Lengths around the vector widths (8 and 16 floats) and their multiples.
std::vector<int64_t> odd_lengths() {
  std::vector<int64_t> n;
  for (int64_t i = 1; i <= 40; ++i) n.push_back(i);
  for (int64_t i : {47, 63, 64, 65, 127, 129, 255, 257, 1000, 1023}) n.push_back(i);
  return n;
}

TEST(GuardedReads, RowKernels) {
  IsaGuard guard;
  std::mt19937 rng(3);
  for (const std::string& isa : available_isas()) {
    for (const Edge edge : {Edge::End, Edge::Start}) {
      for (const int64_t n : odd_lengths()) {
        SCOPED_TRACE(isa + " n=" + std::to_string(n) + (edge == Edge::End ? " end" : " start"));
        const auto x = random_floats(n, rng, 2.0f), u = random_floats(n, rng, 2.0f);
        auto w = random_floats(n, rng, 0.5f);
        for (float& v : w) v += 1.0f;  // weights 0.5 .. 1.5
        Guarded<float> gx(x, edge), gw(w, edge), gu(u, edge);
        ASSERT_TRUE(force_isa(isa));

        std::vector<float> want(static_cast<size_t>(n)), got(want.size());
        scalar::rms_norm(x.data(), w.data(), want.data(), n, 1e-6f);
        rms_norm(gx.get(), gw.get(), got.data(), n, 1e-6f);
        for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(got[i], want[i], 1e-6f * std::fabs(want[i]) + 1e-12f) << i;

        Guarded<float> gg(x, edge);  // SiLU times up, in place
        want = x;
        scalar::silu_mul(want.data(), u.data(), n);
        silu_mul(gg.get(), gu.get(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(gg.get()[i], want[i], 1e-6f * (1.0f + std::fabs(want[i]))) << i;

        const SoftmaxSums s_want = scalar::softmax_sums(x.data(), n), s_got = softmax_sums(gx.get(), n);
        ASSERT_EQ(s_got.max, s_want.max);
        // The tolerance of LogitRows.SoftmaxSumsMatchReference (float lanes, exp_ps's few ulps).
        ASSERT_NEAR(s_got.sum, s_want.sum, 2e-5 * s_want.sum);
        ASSERT_NEAR(s_got.weighted, s_want.weighted, 2e-5 * (1.0 - s_want.weighted));
        for (const float threshold : {0.0f, 1.5f, 3.0f})
          ASSERT_EQ(find_above(gx.get(), 0, n, threshold), scalar::find_above(x.data(), 0, n, threshold));

        std::vector<uint16_t> h(static_cast<size_t>(n));
        f32_to_f16_row(gx.get(), h.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(h[i], f32_to_fp16(x[i])) << i;
        Guarded<uint16_t> gh(h, edge);
        f16_to_f32_row(gh.get(), got.data(), n);
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], fp16_to_f32(h[i])) << i;
      }
    }
  }
}

// Rows of every type with a few blocks: dequantized to the scalar
// reference's bits, and their dot products with float activations within
// float rounding of the reference's.
TEST(GuardedReads, DequantizeAndDot) {
  IsaGuard guard;
  std::mt19937 rng(5);
  for (const std::string& isa : available_isas()) {
    for (const DType type : kAllTypes) {
      const int64_t block = traits(type).block_elems;
      for (const int64_t blocks : {1, 2, 3, 5}) {
        const int64_t n = block == 1 ? 13 * blocks : block * blocks;
        for (const Edge edge : {Edge::End, Edge::Start}) {
          SCOPED_TRACE(isa + " " + std::string(dtype_name(type)) + " n=" + std::to_string(n) +
                       (edge == Edge::End ? " end" : " start"));
          const auto row = random_rows(type, n, 1, rng);
          const auto x = random_floats(n, rng, 2.0f);
          Guarded<uint8_t> grow(row, edge);
          Guarded<float> gx(x, edge);
          ASSERT_TRUE(force_isa(isa));
          std::vector<float> want(static_cast<size_t>(n)), got(want.size());
          scalar::dequantize_row(type, row.data(), want.data(), n);
          dequantize_row(type, grow.get(), got.data(), n);
          ASSERT_EQ(got, want);
          double magnitude = 0;
          for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(want[i]) * x[i]);
          ASSERT_NEAR(dot(type, grow.get(), gx.get(), n), scalar::dot(type, row.data(), x.data(), n),
                      1e-5 * magnitude + 1e-6);
        }
      }
    }
  }
}

// One-token and multi-token products on the fast path: the stored matrix
// (the last row ending at the guard) and its packed copy where the type has
// one, against the same product on ordinary memory.
TEST(GuardedReads, FastProducts) {
  IsaGuard guard;
  std::mt19937 rng(7);
  for (const std::string& isa : available_isas()) {
    for (const DType type : kAllTypes) {
      // A few blocks a row, and for the K types also rows long enough for
      // the quads forms (kQuadsMinCols, whole runs of 64 rows).
      const int64_t block = traits(type).block_elems;
      std::vector<std::pair<int64_t, int64_t>> shapes = {{block == 1 ? 200 : block == 256 ? 512 : 96, 48}};
      if (block == 256) shapes.emplace_back(kQuadsMinCols, 64);
      for (const auto& [cols, rows] : shapes) {
        const int64_t stride = row_bytes(type, cols);
        SCOPED_TRACE(isa + " " + std::string(dtype_name(type)) + " " + std::to_string(rows) + "x" +
                     std::to_string(cols));
        ASSERT_TRUE(force_isa(isa));
        const auto data = random_rows(type, cols, rows, rng);
        Guarded<uint8_t> gdata(data, Edge::End);
        const TensorView plain = TensorView::matrix(type, data.data(), cols, rows, stride);
        TensorView guarded = TensorView::matrix(type, gdata.get(), cols, rows, stride);
        for (const int64_t n_tokens : {int64_t{1}, int64_t{5}}) {
          const auto X = random_floats(n_tokens * cols, rng, 2.0f);
          Guarded<float> gX(X, Edge::End);
          Activations acts, gacts;
          acts.set(X.data(), cols, n_tokens, cols);
          gacts.set(gX.get(), cols, n_tokens, cols);
          std::vector<float> want(static_cast<size_t>(n_tokens * rows)), got(want.size());
          matmul_fast(plain, acts, want.data(), nullptr);
          matmul_fast(guarded, gacts, got.data(), nullptr);
          for (size_t i = 0; i < want.size(); ++i)
            ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << n_tokens << " tokens, " << i;
        }
        if (can_pack_rows16(plain)) {
          // The packed copy, as generation reads it, ending at the guard.
          std::vector<uint8_t> packed_plain(static_cast<size_t>(rows16_bytes(plain)));
          TensorView packed = plain;
          attach_rows16(packed, packed_plain.data());
          Guarded<uint8_t> gpacked(packed_plain, Edge::End);
          TensorView packed_guarded = packed;
          packed_guarded.rows16 = gpacked.get();
          const auto X = random_floats(cols, rng, 2.0f);
          Activations acts;
          acts.set(X.data(), cols, 1, cols);
          std::vector<float> want(static_cast<size_t>(rows)), got(want.size());
          matmul_fast(packed, acts, want.data(), nullptr);
          matmul_fast(packed_guarded, acts, got.data(), nullptr);
          ASSERT_EQ(got, want);
        }
      }
    }
  }
}

// The one-token F16/BF16 product of long rows (activations of 16 KiB or
// more), rows and activations ending at the guard, lengths off the vector
// widths.
TEST(GuardedReads, LongRowProducts) {
  IsaGuard guard;
  std::mt19937 rng(13);
  for (const std::string& isa : available_isas()) {
    for (const DType type : {DType::F16, DType::BF16}) {
      for (const int64_t n : {int64_t{4096}, int64_t{4103}, int64_t{8960}}) {
        SCOPED_TRACE(isa + " " + std::string(dtype_name(type)) + " n=" + std::to_string(n));
        const int64_t rows = 5, stride = row_bytes(type, n);
        const auto w = random_rows(type, n, rows, rng);
        const auto x = random_floats(n, rng, 2.0f);
        Guarded<uint8_t> gw(w, Edge::End);
        Guarded<float> gx(x, Edge::End);
        ASSERT_TRUE(force_isa(isa));
        std::vector<float> got(static_cast<size_t>(rows));
        gemv_long_rows(type, gw.get(), stride, rows, n, gx.get(), got.data());
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<float> row(static_cast<size_t>(n));
          scalar::dequantize_row(type, &w[static_cast<size_t>(r * stride)], row.data(), n);
          double magnitude = 0;
          for (int64_t i = 0; i < n; ++i) magnitude += std::fabs(static_cast<double>(row[i]) * x[i]);
          ASSERT_NEAR(got[r], scalar::dot(type, &w[static_cast<size_t>(r * stride)], x.data(), n),
                      1e-5 * magnitude + 1e-6)
              << r;
        }
      }
    }
  }
}

// Attention with the queries, keys and values each ending at a guard, head
// sizes off the vector widths, one token (the cache read directly) and
// several (keys converted in blocks), F32, F16 and Q8_0 caches, every
// AVX-512 attention variant.
TEST(GuardedReads, Attention) {
  IsaGuard guard;
  std::mt19937 rng(11);
  const test_support::AttentionShape cases[] = {{1, 2, 8, 5},   {4, 2, 8, 33},  {1, 3, 40, 20}, {4, 2, 40, 33},
                                                {3, 2, 72, 40}, {1, 2, 96, 70}, {5, 2, 128, 61}};
  for (const test_support::AttentionShape& c : cases) {
    const int64_t positions = c.n_past + c.n_tokens;
    const auto q = random_floats(static_cast<int64_t>(c.n_tokens) * c.n_heads * c.head_dim, rng, 2.0f);
    const auto k = random_floats(positions * c.head_dim, rng, 2.0f),
               v = random_floats(positions * c.head_dim, rng, 2.0f);
    for (const DType kv_type : {DType::F32, DType::F16, DType::Q8_0}) {
      if (kv_type == DType::Q8_0 && c.head_dim % 32 != 0) continue;  // whole blocks only
      std::vector<uint8_t> k_bytes, v_bytes;
      auto store = [&](const std::vector<float>& x, std::vector<uint8_t>& out) {
        if (kv_type == DType::Q8_0) {
          const int64_t row = kv_row_bytes(DType::Q8_0, c.head_dim);
          out.resize(static_cast<size_t>(positions * row));
          for (int64_t j = 0; j < positions; ++j)
            quantize_q8_0_row(&x[static_cast<size_t>(j * c.head_dim)], c.head_dim, &out[static_cast<size_t>(j * row)]);
        } else if (kv_type == DType::F32) {
          out.resize(x.size() * 4);
          std::memcpy(out.data(), x.data(), out.size());
        } else {
          out.resize(x.size() * 2);
          for (size_t i = 0; i < x.size(); ++i) put_u16(out, 2 * i, f32_to_fp16(x[i]));
        }
      };
      store(k, k_bytes);
      store(v, v_bytes);
      Guarded<float> gq(q, Edge::End);
      Guarded<uint8_t> gk(k_bytes, Edge::End), gv(v_bytes, Edge::End);
      auto args = [&](const float* q_data, const void* k_data, const void* v_data, float* out) {
        return test_support::attention_args(c, q_data, out, c.head_dim, kv_type, k_data, v_data, c.head_dim);
      };
      std::vector<float> want(q.size()), got(q.size());
      scalar::attention(args(q.data(), k_bytes.data(), v_bytes.data(), want.data()));
      for (const std::string& isa : available_isas()) {
        for (const bool avx512_attention : {true, false}) {
          ASSERT_TRUE(force_isa(isa));
          CpuTuning tuning = cpu_tuning();
          tuning.avx512_attention = avx512_attention;
          force_cpu_tuning(tuning);
          SCOPED_TRACE(isa + (avx512_attention ? "" : " (AVX2 attention)") + " tokens=" + std::to_string(c.n_tokens) +
                       " dim=" + std::to_string(c.head_dim) + " " + std::string(dtype_name(kv_type)));
          AttentionScratch scratch;
          attention(args(gq.get(), gk.get(), gv.get(), got.data()), scratch);
          for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 2e-6 + 2e-5 * std::fabs(want[i])) << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace glassbox::kernels
