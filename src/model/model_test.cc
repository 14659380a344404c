// The engine's logits against llama.cpp's (cross-checked by a float64 numpy
// forward pass) for every reference model: batched and token by token.
#include "model/model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>

namespace glassbox {
namespace {

namespace fs = std::filesystem;
const fs::path kRef = fs::path(GLASSBOX_TEST_DATA) / "reference";

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  if (!in) throw std::runtime_error("cannot open " + p.string());
  return nlohmann::json::parse(in);
}

// Expected logits of one position: either the full row or top-64 pairs.
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
  if (topk) {  // the last position is also given in full
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

struct Case {
  std::string model;     // file in models/
  std::string expected;  // logits file: dequant-f32 for non-F32 files
  double tolerance;
};

std::vector<Case> all_cases() {
  std::vector<Case> cases;
  for (const auto& e : fs::directory_iterator(kRef / "logits")) {
    const std::string name = e.path().filename().string();
    const std::string suffix = ".logits.json";
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    if (name.find(".dequant-f32.") != std::string::npos || name.find("greedy") != std::string::npos) continue;
    const std::string stem = name.substr(0, name.size() - suffix.size());
    const fs::path dequant = kRef / "logits" / (stem + ".dequant-f32.logits.json");
    // F32 activations over exactly the stored weights: compare with llama.cpp
    // computing in F32 on the dequantized weights (README: about 1e-4).
    cases.push_back({stem + ".gguf", fs::exists(dequant) ? dequant.filename().string() : name, 1e-4});
  }
  std::sort(cases.begin(), cases.end(), [](const Case& a, const Case& b) { return a.model < b.model; });
  return cases;
}

class ReferenceLogits : public ::testing::TestWithParam<Case> {};

TEST_P(ReferenceLogits, BatchedAndSequentialMatch) {
  const Case& c = GetParam();
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / c.model).string(), lo);
  const nlohmann::json ref = read_json(kRef / "logits" / c.expected);
  const std::vector<TokenId> tokens = ref["tokens"].get<std::vector<TokenId>>();
  const auto rows = expected_rows(ref);
  ASSERT_EQ(rows.size(), tokens.size());
  ASSERT_EQ(ref["n_vocab"].get<int>(), model->config().n_vocab);

  ContextOptions co;
  co.n_ctx = 128;
  co.n_threads = 2;
  co.precision = Precision::Exact;  // F32 activations: the dequant-F32 reference at 1e-4
  Context batch(*model, co);
  batch.eval(tokens, /*all_logits=*/true);
  for (size_t p = 0; p < tokens.size(); ++p)
    EXPECT_LE(max_diff(batch.logits(static_cast<int>(p)), rows[p]), c.tolerance) << c.model << " batch pos " << p;

  Context seq(*model, co);
  for (size_t p = 0; p < tokens.size(); ++p) {
    seq.eval(std::span<const TokenId>(&tokens[p], 1));
    EXPECT_LE(max_diff(seq.logits(), rows[p]), c.tolerance) << c.model << " sequential pos " << p;
  }

  // Greedy continuation from the batch context, compared while the recorded
  // top-2 margin is larger than the tolerance (a closer call may flip).
  const auto greedy = ref["greedy"].get<std::vector<int>>();
  const auto margin = ref["greedy_top2_margin"].get<std::vector<double>>();
  for (size_t i = 0; i < greedy.size() && margin[i] > 10 * c.tolerance; ++i) {
    const int next = argmax(batch.logits(), batch.n_vocab());
    ASSERT_EQ(next, greedy[i]) << c.model << " greedy step " << i;
    batch.eval(std::span<const TokenId>(&greedy[i], 1));
  }
}

// The native (quantized-activation) llama.cpp logits are within the README's
// bound for engines that keep activations in F32 (0.15).
TEST_P(ReferenceLogits, NativeLlamaCppWithinQuantizationNoise) {
  const Case& c = GetParam();
  const fs::path native = kRef / "logits" / (c.model.substr(0, c.model.size() - 5) + ".logits.json");
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / c.model).string(), lo);
  const nlohmann::json ref = read_json(native);
  const std::vector<TokenId> tokens = ref["tokens"].get<std::vector<TokenId>>();
  const auto rows = expected_rows(ref);
  ContextOptions co;
  co.n_ctx = 64;
  co.n_threads = 1;
  co.precision = Precision::Exact;
  Context ctx(*model, co);
  ctx.eval(tokens, true);
  for (size_t p = 0; p < tokens.size(); ++p) EXPECT_LE(max_diff(ctx.logits(static_cast<int>(p)), rows[p]), 0.15);
}

INSTANTIATE_TEST_SUITE_P(AllModels, ReferenceLogits, ::testing::ValuesIn(all_cases()), [](const auto& info) {
  std::string n = info.param.model;
  for (char& ch : n)
    if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
  return n;
});

// stories260K, a real trained model: 200 greedy tokens from BOS equal the
// reference (llama2.c's published output).
TEST(Stories260K, Greedy200FromBos) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / "stories260K.gguf").string(), lo);
  const auto ref = read_json(kRef / "logits" / "stories260K.greedy200.json");
  const auto ids = ref["ids"].get<std::vector<int>>();
  ASSERT_EQ(ids.size(), 201u);
  ContextOptions co;
  co.n_ctx = 256;
  co.precision = Precision::Exact;
  Context ctx(*model, co);
  std::vector<TokenId> out = {ids[0]};
  ctx.eval(std::span<const TokenId>(out.data(), 1));
  for (int i = 0; i < 200; ++i) {
    const TokenId next = argmax(ctx.logits(), ctx.n_vocab());
    out.push_back(next);
    ctx.eval(std::span<const TokenId>(&out.back(), 1));
  }
  EXPECT_EQ(out, std::vector<TokenId>(ids.begin(), ids.end()));
}

TEST(Context, RejectsOutOfRangeTokensAndFullContext) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / "rand-qwen3.f32.gguf").string(), lo);
  ContextOptions co;
  co.n_ctx = 4;
  Context ctx(*model, co);
  const std::vector<TokenId> bad = {600};
  EXPECT_THROW(ctx.eval(bad), Error);
  const std::vector<TokenId> five = {1, 2, 3, 4, 5};
  EXPECT_THROW(ctx.eval(five), Error);
  EXPECT_EQ(ctx.n_past(), 0);
}

TEST(Context, TruncateThenReevaluateGivesSameLogits) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / "rand-qwen2.q8_0.gguf").string(), lo);
  Context ctx(*model);
  const std::vector<TokenId> a = {1, 5, 9, 200, 33};
  ctx.eval(a);
  const std::vector<float> first(ctx.logits(), ctx.logits() + ctx.n_vocab());
  ctx.truncate(2);
  ctx.eval(std::span<const TokenId>(a.data() + 2, 3));
  for (int i = 0; i < ctx.n_vocab(); ++i) ASSERT_FLOAT_EQ(ctx.logits()[i], first[i]);
}

}  // namespace
}  // namespace glassbox

namespace glassbox {
namespace {

// Hooks observe without changing anything: logits with hooks set equal the
// logits without, bit for bit; the residual hook sees every layer and the
// attention probabilities of each query sum to 1. With the default cache and
// with a Q8_0 one (the hook's probabilities are then computed from the
// dequantized keys).
TEST(Hooks, ObserveWithoutChangingTheForwardPass) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  const std::pair<const char*, KvCacheType> cases[] = {{"rand-llama.f32.gguf", KvCacheType::Auto},
                                                       {"rand-qwen3-kq.q4_k_m.gguf", KvCacheType::Q8_0}};
  for (const auto& [name, kv_cache] : cases) {
    SCOPED_TRACE(name);
    auto model = Model::load((kRef / "models" / name).string(), lo);
    const std::vector<TokenId> tokens = {1, 403, 407, 261, 378, 432};
    ContextOptions co;
    co.kv_cache = kv_cache;
    Context plain(*model, co);
    plain.eval(tokens, true);

    std::vector<int> layers_seen;
    std::mutex mu;
    double worst_sum_error = 0;
    int attention_calls = 0;
    ForwardHooks hooks;
    hooks.on_layer_output = [&](int layer, int pos0, int n, const float*) {
      EXPECT_EQ(pos0, 0);
      EXPECT_EQ(n, 6);
      layers_seen.push_back(layer);
    };
    const int watched_layer = model->config().n_layer - 1;
    hooks.wants_attention = [&](int layer) { return layer == watched_layer; };
    hooks.on_attention = [&](int layer, int, int pos, int n_keys, const float* p) {
      std::lock_guard<std::mutex> lock(mu);
      EXPECT_EQ(layer, watched_layer);
      EXPECT_EQ(n_keys, pos + 1);
      double s = 0;
      for (int j = 0; j < n_keys; ++j) s += p[j];
      worst_sum_error = std::max(worst_sum_error, std::abs(s - 1.0));
      ++attention_calls;
    };
    Context watched(*model, co);
    watched.set_hooks(&hooks);
    watched.eval(tokens, true);
    std::vector<int> all_layers(static_cast<size_t>(model->config().n_layer));
    std::iota(all_layers.begin(), all_layers.end(), 0);
    EXPECT_EQ(layers_seen, all_layers);
    EXPECT_EQ(attention_calls, 6 * model->config().n_head);
    EXPECT_LT(worst_sum_error, 1e-5);
    for (int p = 0; p < 6; ++p)
      for (int i = 0; i < watched.n_vocab(); ++i) ASSERT_EQ(watched.logits(p)[i], plain.logits(p)[i]);
  }
}

// A fork copies the cached prefix: continuing from it gives the same logits
// as the original context, without evaluating the prefix again.
TEST(Context, ForkFromReusesThePrefix) {
  LoadOptions lo;
  lo.load_tokenizer = false;
  auto model = Model::load((kRef / "models" / "rand-qwen2-kq.q4_k_m.gguf").string(), lo);
  const std::vector<TokenId> prefix = {1, 7, 99, 300, 12, 5, 6};
  const std::vector<TokenId> tail = {42, 43};
  Context main_ctx(*model);
  main_ctx.eval(prefix);
  main_ctx.eval(tail);
  Context fork(*model);
  fork.fork_from(main_ctx, static_cast<int>(prefix.size()));
  fork.eval(tail);
  EXPECT_EQ(fork.tokens_evaluated(), 2);
  for (int i = 0; i < fork.n_vocab(); ++i) ASSERT_EQ(fork.logits()[i], main_ctx.logits()[i]);
  EXPECT_THROW(fork.fork_from(main_ctx, 100), Error);
}

}  // namespace
}  // namespace glassbox
