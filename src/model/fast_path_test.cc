// The fast precision (8-bit activations, F16 KV cache) against llama.cpp's
// native logits (its own quantized-activation CPU path), for every reference
// model, batched and token by token; greedy agreement while the reference
// margin allows; and no memory allocation while decoding.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <new>
#include <nlohmann/json.hpp>

#include "kernels/kernels.h"
#include "model/model.h"

// Counts every allocation of the process (the test below looks at the
// difference across a stretch of decoding).
namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

// GCC cannot see that every pointer freed here came from this operator new.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace glassbox {
namespace {

namespace fs = std::filesystem;
const fs::path kRef = fs::path(GLASSBOX_TEST_DATA) / "reference";

// README: an engine that quantizes activations as ggml does, but not
// bit-compatibly, is within about 0.15 of llama.cpp's native logits.
constexpr double kNativeTolerance = 0.15;

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  return nlohmann::json::parse(in);
}

struct ExpectedRow {
  std::vector<std::pair<int, float>> entries;
};

std::vector<ExpectedRow> expected_rows(const nlohmann::json& j) {
  std::vector<ExpectedRow> rows;
  const bool topk = j.value("logits_format", "full") != "full";
  for (const auto& r : j["logits"]) {
    ExpectedRow row;
    if (topk) {
      for (const auto& e : r) row.entries.emplace_back(e[0].get<int>(), e[1].get<float>());
    } else {
      for (size_t i = 0; i < r.size(); ++i) row.entries.emplace_back(static_cast<int>(i), r[i].get<float>());
    }
    rows.push_back(std::move(row));
  }
  if (topk) {
    ExpectedRow last;
    const auto& l = j["last_logits"];
    for (size_t i = 0; i < l.size(); ++i) last.entries.emplace_back(static_cast<int>(i), l[i].get<float>());
    rows.back() = std::move(last);
  }
  return rows;
}

double max_diff(const float* got, const ExpectedRow& want) {
  double m = 0;
  for (const auto& [id, v] : want.entries) m = std::max(m, std::abs(static_cast<double>(got[id]) - v));
  return m;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// Every model that has native llama.cpp logits.
std::vector<std::string> native_cases() {
  std::vector<std::string> stems;
  for (const auto& e : fs::directory_iterator(kRef / "logits")) {
    const std::string name = e.path().filename().string();
    const std::string suffix = ".logits.json";
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    if (name.find(".dequant-f32.") != std::string::npos || name.find("greedy") != std::string::npos) continue;
    stems.push_back(name.substr(0, name.size() - suffix.size()));
  }
  std::sort(stems.begin(), stems.end());
  return stems;
}

class FastPath : public ::testing::TestWithParam<std::string> {};

TEST_P(FastPath, MatchesNativeLlamaCppBatchedAndSequential) {
  const std::string& stem = GetParam();
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / (stem + ".gguf")).string(), lo);
  const nlohmann::json ref = read_json(kRef / "logits" / (stem + ".logits.json"));
  const std::vector<TokenId> tokens = ref["tokens"].get<std::vector<TokenId>>();
  const auto rows = expected_rows(ref);
  ASSERT_EQ(rows.size(), tokens.size());

  ContextOptions co;
  co.n_ctx = 128;
  co.n_threads = 2;
  ASSERT_EQ(co.precision, Precision::Fast);  // the default
  Context batch(*model, co);
  ASSERT_EQ(batch.kv_cache_type(), KvCacheType::F16);
  batch.eval(tokens, /*all_logits=*/true);
  double worst_batch = 0, worst_seq = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    const double d = max_diff(batch.logits(static_cast<int>(p)), rows[p]);
    worst_batch = std::max(worst_batch, d);
    EXPECT_LE(d, kNativeTolerance) << stem << " batch pos " << p;
  }
  Context seq(*model, co);
  for (size_t p = 0; p < tokens.size(); ++p) {
    seq.eval(std::span<const TokenId>(&tokens[p], 1));
    const double d = max_diff(seq.logits(), rows[p]);
    worst_seq = std::max(worst_seq, d);
    EXPECT_LE(d, kNativeTolerance) << stem << " sequential pos " << p;
  }
  std::printf("[   INFO   ] %s: max |fast - native| batch %.4f, sequential %.4f\n", stem.c_str(), worst_batch,
              worst_seq);

  // Greedy continuation, compared while the recorded top-2 margin exceeds
  // twice the tolerance (a closer call may flip either way).
  const auto greedy = ref["greedy"].get<std::vector<int>>();
  const auto margin = ref["greedy_top2_margin"].get<std::vector<double>>();
  for (size_t i = 0; i < greedy.size() && margin[i] > 2 * kNativeTolerance; ++i) {
    ASSERT_EQ(argmax(batch.logits(), batch.n_vocab()), greedy[i]) << stem << " greedy step " << i;
    batch.eval(std::span<const TokenId>(&greedy[i], 1));
  }
}

INSTANTIATE_TEST_SUITE_P(AllModels, FastPath, ::testing::ValuesIn(native_cases()), [](const auto& info) {
  std::string n = info.param;
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

// Matrices packed for one-token products (Q4_K and Q6_K; Q8_0 and Q4_0
// where the instruction set packs them) give the logits of the original rows (up to
// float summation order), where the CPU has the kernels.
struct PackedCase {
  std::string model;
  std::vector<DType> packed_types;
};

class PackedMatrices : public ::testing::TestWithParam<PackedCase> {};

TEST_P(PackedMatrices, GiveTheSameLogits) {
  const PackedCase& c = GetParam();
  for (const DType type : c.packed_types)
    if (!kernels::have_fast_rows16(type))
      GTEST_SKIP() << "no SIMD kernel for packed " << dtype_name(type) << " on this CPU";
  const std::string path = (kRef / "models" / c.model).string();
  LoadOptions packed_options, plain_options;
  packed_options.load_tokenizer = plain_options.load_tokenizer = false;
  plain_options.pack_for_generation = false;
  auto packed = Model::load(path, packed_options);
  auto plain = Model::load(path, plain_options);
  std::map<DType, int> n_packed;
  for (const LayerWeights& l : packed->weights().layers)
    for (const TensorView* W : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      if (W->rows16 != nullptr) ++n_packed[W->type];
  if (packed->weights().output.rows16 != nullptr) ++n_packed[packed->weights().output.type];
  for (const DType type : c.packed_types)
    ASSERT_GT(n_packed[type], 0) << "no " << dtype_name(type) << " matrix was packed";
  EXPECT_EQ(plain->weights().layers[0].wq.rows16, nullptr);
  ContextOptions co;
  co.n_ctx = 64;
  co.n_threads = 2;
  Context a(*packed, co), b(*plain, co);
  const std::vector<TokenId> tokens = {1, 17, 300, 5, 42, 7, 99, 3};
  for (TokenId t : tokens) {
    a.eval(std::span<const TokenId>(&t, 1));
    b.eval(std::span<const TokenId>(&t, 1));
    double worst = 0, scale = 0;
    for (int i = 0; i < a.n_vocab(); ++i) {
      worst = std::max(worst, std::abs(static_cast<double>(a.logits()[i]) - b.logits()[i]));
      scale = std::max(scale, std::abs(static_cast<double>(b.logits()[i])));
    }
    EXPECT_LE(worst, 1e-3 * (1 + scale)) << "token " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(Models, PackedMatrices,
                         ::testing::Values(PackedCase{"rand-qwen3-kq.q4_k_m.gguf", {DType::Q4_K, DType::Q6_K}},
                                           PackedCase{"rand-qwen3.q8_0.gguf", {DType::Q8_0}},
                                           PackedCase{"rand-qwen3.q4_0.gguf", {DType::Q4_0}}),
                         [](const auto& info) { return std::string(dtype_name(info.param.packed_types[0])); });

// The F32 cache is selectable and, with 8-bit activations, stays within
// the same bound; F16 and F32 caches differ only by the fp16 rounding.
TEST(FastPathOptions, F32CacheAndExactPrecision) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / "rand-qwen3.q8_0.gguf").string(), lo);
  const std::vector<TokenId> tokens = {1, 20, 300, 41, 5, 77, 8};
  ContextOptions co;
  co.n_ctx = 32;
  co.n_threads = 2;
  Context f16(*model, co);
  co.kv_cache = KvCacheType::F32;
  Context f32(*model, co);
  EXPECT_EQ(f32.kv_cache_type(), KvCacheType::F32);
  f16.eval(tokens, true);
  f32.eval(tokens, true);
  double worst = 0;
  for (size_t p = 0; p < tokens.size(); ++p)
    for (int i = 0; i < f16.n_vocab(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(f16.logits(static_cast<int>(p))[i]) -
                                       f32.logits(static_cast<int>(p))[i]));
  EXPECT_LT(worst, kNativeTolerance);

  co.precision = Precision::Exact;
  co.kv_cache = KvCacheType::Auto;
  Context exact(*model, co);
  EXPECT_EQ(exact.precision(), Precision::Exact);
  EXPECT_EQ(exact.kv_cache_type(), KvCacheType::F32);
  EXPECT_EQ(exact.options().precision, Precision::Exact);
  EXPECT_EQ(exact.options().n_threads, 2);
}

// A fork between caches of different types converts the cached rows.
TEST(FastPathOptions, ForkAcrossCacheTypes) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / "rand-llama.q8_0.gguf").string(), lo);
  const std::vector<TokenId> prefix = {1, 7, 99, 300, 12};
  const TokenId next = 42;
  ContextOptions co;
  co.n_ctx = 32;
  co.kv_cache = KvCacheType::F32;
  Context f32(*model, co);
  f32.eval(prefix);
  co.kv_cache = KvCacheType::F16;
  Context f16(*model, co);
  f16.fork_from(f32, static_cast<int>(prefix.size()));
  Context back(*model, ContextOptions{32, 256, 0, Precision::Fast, KvCacheType::F32});
  back.fork_from(f16, static_cast<int>(prefix.size()));
  f16.eval(std::span<const TokenId>(&next, 1));
  back.eval(std::span<const TokenId>(&next, 1));
  f32.eval(std::span<const TokenId>(&next, 1));
  // The three differ only by the fp16 rounding of cached rows.
  for (int i = 0; i < f16.n_vocab(); ++i) {
    ASSERT_NEAR(back.logits()[i], f16.logits()[i], 0.05);
    ASSERT_NEAR(f32.logits()[i], f16.logits()[i], 0.05);
  }
}

// A Q8_0 cache: 8-bit keys and values (and queries, in attention) move the
// logits a little more than an F16 cache does, and no further than the
// bound below; forks copy it exactly and convert it to other types; a model
// whose heads are not whole blocks of 32 is refused with a reason.
TEST(FastPathOptions, Q8CacheFollowsTheF32Cache) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  for (const char* name : {"rand-qwen3.q8_0.gguf", "rand-qwen3-kq.q4_k_m.gguf", "rand-llama-kq.q6_k.gguf"}) {
    SCOPED_TRACE(name);
    auto model = Model::load((kRef / "models" / name).string(), lo);
    std::vector<TokenId> tokens;
    for (int i = 0; i < 40; ++i) tokens.push_back((i * 37 + 11) % model->config().n_vocab);
    ContextOptions co;
    co.n_ctx = 64;
    co.n_threads = 2;
    co.kv_cache = KvCacheType::F32;
    Context f32(*model, co);
    co.kv_cache = KvCacheType::F16;
    Context f16(*model, co);
    co.kv_cache = KvCacheType::Q8_0;
    Context q8(*model, co);
    EXPECT_EQ(q8.kv_cache_type(), KvCacheType::Q8_0);
    EXPECT_EQ(q8.options().kv_cache, KvCacheType::Q8_0);
    const std::span<const TokenId> prefix(tokens.data(), tokens.size() - 1);
    f32.eval(prefix, true);
    f16.eval(prefix, true);
    q8.eval(prefix, true);
    double worst16 = 0, worst8 = 0;
    for (int p = 0; p < static_cast<int>(prefix.size()); ++p) {
      for (int i = 0; i < f32.n_vocab(); ++i) {
        worst16 = std::max(worst16, std::abs(static_cast<double>(f16.logits(p)[i]) - f32.logits(p)[i]));
        worst8 = std::max(worst8, std::abs(static_cast<double>(q8.logits(p)[i]) - f32.logits(p)[i]));
      }
    }
    EXPECT_GT(worst8, worst16);  // the cache really is 8-bit
    // Where the prompt's products quantize their activations to 8 bits (Q4_K,
    // Q6_K), the rounding of those amplifies any change: an F16 cache moves
    // these random models' logits by ~0.1 and a Q8_0 one by ~0.15. Where
    // they multiply in F32 (Q8_0 weights on AVX2, kernels::multi_token_f32)
    // an F16 cache moves them by ~0.002 and a Q8_0 one by ~0.07. Either way
    // within what llama.cpp's own quantized path differs by.
    EXPECT_LT(worst8, kNativeTolerance + 0.05);

    // Same type: the rows are copied, and the fork continues bit for bit.
    Context copy(*model, co);
    copy.fork_from(q8, static_cast<int>(prefix.size()));
    // Q8_0 to F32: the rows dequantized, the same values the Q8_0 context reads.
    co.kv_cache = KvCacheType::F32;
    Context widened(*model, co);
    widened.fork_from(q8, static_cast<int>(prefix.size()));
    const TokenId next = tokens.back();
    for (Context* c : {&q8, &copy, &widened}) c->eval(std::span<const TokenId>(&next, 1));
    for (int i = 0; i < q8.n_vocab(); ++i) {
      ASSERT_EQ(copy.logits()[i], q8.logits()[i]) << i;
      // Against an F32 cache holding the same values the query is not
      // quantized: at one position (8-bit activations), no more change than
      // the cache's over the prompt or llama.cpp's own quantized path.
      ASSERT_NEAR(widened.logits()[i], q8.logits()[i], std::max(worst8, kNativeTolerance)) << i;
    }
  }
  auto narrow = Model::load((kRef / "models" / "rand-llama.q8_0.gguf").string(), lo);  // heads of 16
  try {
    Context c(*narrow, ContextOptions{32, 256, 1, Precision::Fast, KvCacheType::Q8_0});
    FAIL() << "a Q8_0 cache was made for heads of 16";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("multiples of 32"), std::string::npos) << e.what();
  }
}

TEST(FastPathOptions, KvCacheTypeNames) {
  for (KvCacheType t : {KvCacheType::F32, KvCacheType::F16, KvCacheType::Q8_0})
    EXPECT_EQ(parse_kv_cache_type(kv_cache_type_name(t)), t);
  EXPECT_EQ(kv_cache_type_name(KvCacheType::Q8_0), "q8_0");
  EXPECT_FALSE(parse_kv_cache_type("q4_0").has_value());
  EXPECT_FALSE(parse_kv_cache_type("Q8_0").has_value());
  EXPECT_FALSE(parse_kv_cache_type("").has_value());
}

// Generation on several threads (row pieces of each product stolen between
// threads; attention heads split evenly for one token, and going to
// whichever thread is free for the prompt) gives the bits of a single
// thread's logits, for any thread count.
TEST(FastPathOptions, ThreadCountsGiveIdenticalLogits) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  // rand-llama-kq: packed Q4_K/Q6_K rows; rand-qwen3-kq: packed, q/k
  // norms; rand-qwen2: Q8_0 with biases.
  for (const char* name : {"rand-llama-kq.q4_k_m.gguf", "rand-qwen3-kq.q4_k_m.gguf", "rand-qwen2.q8_0.gguf"}) {
    auto model = Model::load((kRef / "models" / name).string(), lo);
    const std::vector<TokenId> tokens = {1, 17, 300, 5, 42, 7, 99, 3, 250, 11};
    std::vector<std::vector<float>> want;
    for (int threads : {1, 2, 3, 4}) {
      ContextOptions co;
      co.n_ctx = 32;
      co.n_threads = threads;
      Context ctx(*model, co);
      ctx.eval(std::span<const TokenId>(tokens.data(), 2));  // a prompt of two, then one at a time
      for (size_t i = 2; i < tokens.size(); ++i) {
        ctx.eval(std::span<const TokenId>(&tokens[i], 1));
        const std::vector<float> logits(ctx.logits(), ctx.logits() + ctx.n_vocab());
        if (threads == 1) {
          want.push_back(logits);
        } else {
          ASSERT_EQ(logits, want[i - 2]) << name << ", " << threads << " threads, token " << i;
        }
      }
    }
  }
}

// Decoding a token allocates nothing once the context exists (every buffer
// is sized at construction; kernels keep their scratch).
TEST(FastPathOptions, DecodingDoesNotAllocate) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  for (const char* name : {"rand-qwen3-kq.q4_k_m.gguf", "rand-qwen2.q8_0.gguf", "rand-llama.f16.gguf"}) {
    for (Precision precision : {Precision::Fast, Precision::Exact}) {
      auto model = Model::load((kRef / "models" / name).string(), lo);
      ContextOptions co;
      co.n_ctx = 64;
      co.n_threads = 2;
      co.precision = precision;
      Context ctx(*model, co);
      const std::vector<TokenId> prompt = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
      ctx.eval(prompt);
      TokenId t = 11;
      ctx.eval(std::span<const TokenId>(&t, 1));  // warm-up: thread-local scratch
      const int64_t before = g_allocations.load();
      for (int i = 0; i < 20; ++i) {
        t = argmax(ctx.logits(), ctx.n_vocab());
        ctx.eval(std::span<const TokenId>(&t, 1));
      }
      EXPECT_EQ(g_allocations.load() - before, 0)
          << name << (precision == Precision::Fast ? " fast" : " exact") << ": the decode loop allocated";
    }
  }
}

}  // namespace
}  // namespace glassbox
