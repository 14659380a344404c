// Tests of the quantizers against files written by llama-quantize (the
// reference models in tests/data/reference/models were quantized from their
// F32 masters there), plus the streaming writer, the synthetic-model writer
// and the benchmark measurements.
#include "quantize/quantize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "model/model.h"
#include "quantize/bench.h"
#include "quantize/model_files.h"
#include "quantize/type_rules.h"

namespace glassbox::quantize {
namespace {

namespace fs = std::filesystem;

const std::string kModels = std::string(GLASSBOX_TEST_DATA) + "/reference/models/";

// A scratch file removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& tag)
      : path_(
            (fs::temp_directory_path() / ("glassbox_quantize_test_" + std::to_string(::getpid()) + "_" + tag + ".gguf"))
                .string()) {}
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool values_equal(const gguf::Value& a, const gguf::Value& b) {
  if (a.type() != b.type()) return false;
  if (const gguf::Array* x = a.as_array()) {
    const gguf::Array* y = b.as_array();
    if (x->elem_type != y->elem_type || x->items.size() != y->items.size()) return false;
    for (size_t i = 0; i < x->items.size(); ++i) {
      if (!values_equal(x->items[i], y->items[i])) return false;
    }
    return true;
  }
  return std::visit(
      [&](const auto& va) {
        using T = std::decay_t<decltype(va)>;
        if constexpr (std::is_same_v<T, gguf::Array>) {
          return false;  // handled above
        } else {
          return va == std::get<T>(b.v);
        }
      },
      a.v);
}

// Quantizes `master` with our quantizer and compares every tensor (type,
// shape, bytes) and every metadata entry (order included) with `reference`,
// which llama-quantize made from the same master.
void expect_same_as_llama_quantize(const std::string& master, const std::string& reference, FileType type, bool pure) {
  SCOPED_TRACE(master + " -> " + reference);
  TempFile out(reference);
  QuantizeOptions options;
  options.file_type = type;
  options.pure = pure;
  options.n_threads = 2;
  quantize_model_file(kModels + master, out.path(), options);

  const auto ours = gguf::File::open(out.path());
  const auto ref = gguf::File::open(kModels + reference);
  ASSERT_EQ(ours->tensors().size(), ref->tensors().size());
  int mismatched_tensors = 0;
  for (const gguf::TensorInfo& r : ref->tensors()) {
    const gguf::TensorInfo* o = ours->find_tensor(r.name);
    ASSERT_NE(o, nullptr) << r.name;
    EXPECT_EQ(dtype_name(o->type), dtype_name(r.type)) << r.name;
    ASSERT_EQ(o->n_dims, r.n_dims) << r.name;
    for (int d = 0; d < 4; ++d) EXPECT_EQ(o->ne[d], r.ne[d]) << r.name;
    ASSERT_EQ(o->nbytes, r.nbytes) << r.name;
    uint64_t differing = 0;
    for (uint64_t i = 0; i < r.nbytes; ++i) differing += o->data[i] != r.data[i];
    if (differing != 0) ++mismatched_tensors;
    EXPECT_EQ(differing, 0u) << r.name << " (" << dtype_name(r.type) << "): " << differing << " of " << r.nbytes
                             << " bytes differ";
  }
  EXPECT_EQ(mismatched_tensors, 0);

  const auto& ours_kv = ours->metadata();
  const auto& ref_kv = ref->metadata();
  ASSERT_EQ(ours_kv.size(), ref_kv.size());
  for (size_t i = 0; i < ref_kv.size(); ++i) {
    EXPECT_EQ(ours_kv[i].first, ref_kv[i].first);
    EXPECT_TRUE(values_equal(ours_kv[i].second, ref_kv[i].second)) << ref_kv[i].first;
  }
}

// ------------------------------------------------------------ byte equality with llama-quantize

class BaseModels : public ::testing::TestWithParam<std::string> {};

TEST_P(BaseModels, F16MatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".f16.gguf", FileType::F16, false);
}
TEST_P(BaseModels, BF16MatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".bf16.gguf", FileType::BF16, false);
}
TEST_P(BaseModels, Q8_0MatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".q8_0.gguf", FileType::Q8_0, true);
}
TEST_P(BaseModels, Q4_0MatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".q4_0.gguf", FileType::Q4_0, true);
}
// Rows of 128 and 352 values: Q4_K falls back to Q5_0, Q6_K to Q8_0.
TEST_P(BaseModels, Q4_K_MFallbackMatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".q4_k_m.gguf", FileType::Q4_K_M, false);
}
TEST_P(BaseModels, Q6_KFallbackMatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".q6_k.gguf", FileType::Q6_K, true);
}
INSTANTIATE_TEST_SUITE_P(Reference, BaseModels, ::testing::Values("rand-llama", "rand-qwen2", "rand-qwen3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// The -kq models have rows of 256/512/768 values: real Q4_K and Q6_K blocks.
class KQuantModels : public ::testing::TestWithParam<std::string> {};

TEST_P(KQuantModels, Q6_KMatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".q6_k.gguf", FileType::Q6_K, true);
}
TEST_P(KQuantModels, Q4_K_MMatchesLlamaQuantize) {
  expect_same_as_llama_quantize(GetParam() + ".f32.gguf", GetParam() + ".q4_k_m.gguf", FileType::Q4_K_M, false);
}
INSTANTIATE_TEST_SUITE_P(Reference, KQuantModels, ::testing::Values("rand-llama-kq", "rand-qwen2-kq", "rand-qwen3-kq"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

// ------------------------------------------------------------ row quantizers

std::vector<float> normal_row(int64_t n, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(QuantizeRow, RoundTripErrorIsWithinTheFormatsResolution) {
  const int64_t n = 1024;
  const std::vector<float> x = normal_row(n, 7, 0.05f);
  float absmax = 0;
  for (float v : x) absmax = std::max(absmax, std::fabs(v));
  // Worst-case error relative to the row's largest magnitude, per format.
  const std::pair<DType, float> cases[] = {
      {DType::F16, 1e-3f},      {DType::BF16, 8e-3f},    {DType::Q8_0, 1.0f / 127}, {DType::Q6_K, 1.0f / 20},
      {DType::Q5_0, 1.0f / 16}, {DType::Q4_0, 1.0f / 8}, {DType::Q4_K, 1.0f / 8},
  };
  for (const auto& [type, rel] : cases) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)));
    quantize_row(type, x.data(), q.data(), n);
    std::vector<float> back(static_cast<size_t>(n));
    kernels::scalar::dequantize_row(type, q.data(), back.data(), n);
    float max_err = 0;
    for (int64_t i = 0; i < n; ++i) max_err = std::max(max_err, std::fabs(back[i] - x[i]));
    EXPECT_LE(max_err, rel * absmax) << dtype_name(type);
  }
}

TEST(QuantizeRow, ZeroRowsGiveZeroValues) {
  const int64_t n = 512;
  const std::vector<float> zeros(static_cast<size_t>(n), 0.0f);
  for (DType type : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)), 0xAB);
    quantize_row(type, zeros.data(), q.data(), n);
    std::vector<float> back(static_cast<size_t>(n), 1.0f);
    kernels::scalar::dequantize_row(type, q.data(), back.data(), n);
    for (float v : back) ASSERT_EQ(v, 0.0f) << dtype_name(type);
  }
}

TEST(QuantizeRow, NonFiniteInputIsMemorySafe) {
  // The values are unspecified; the call must not crash or trip UBSan.
  const int64_t n = 256;
  std::vector<float> x = normal_row(n, 3, 1.0f);
  x[5] = NAN;
  x[17] = INFINITY;
  x[200] = -INFINITY;
  for (DType type : {DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q5_0, DType::Q4_K, DType::Q6_K}) {
    std::vector<uint8_t> q(static_cast<size_t>(row_bytes(type, n)));
    quantize_row(type, x.data(), q.data(), n);
  }
}

TEST(QuantizeRow, RejectsBadArguments) {
  std::vector<float> x(300, 1.0f);
  std::vector<uint8_t> q(1024);
  EXPECT_THROW(quantize_row(DType::Q4_K, x.data(), q.data(), 300), Error);
  EXPECT_THROW(quantize_row(DType::Q8_0, x.data(), q.data(), 33), Error);
  EXPECT_THROW(quantize_row(DType::Q2_K, x.data(), q.data(), 256), Error);
  EXPECT_FALSE(can_quantize_to(DType::Q5_1));
  EXPECT_TRUE(can_quantize_to(DType::Q6_K));
}

TEST(FileTypes, ParseAndName) {
  EXPECT_EQ(parse_file_type("q4_k_m"), FileType::Q4_K_M);
  EXPECT_EQ(parse_file_type("BF16"), FileType::BF16);
  EXPECT_FALSE(parse_file_type("Q3_K_S").has_value());
  EXPECT_EQ(file_type_name(FileType::Q6_K), "Q6_K");
  EXPECT_EQ(file_type_description(15), "Q4_K - Medium");
  // llama_ftype ids as stored in general.file_type.
  EXPECT_EQ(static_cast<uint32_t>(FileType::Q4_K_M), 15u);
  EXPECT_EQ(static_cast<uint32_t>(FileType::BF16), 32u);
}

// ------------------------------------------------------------ type rules

TEST(TypeRules, UseMoreBitsFor28Layers) {
  // llama.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2, for n = 28.
  std::vector<int> layers;
  for (int i = 0; i < 28; ++i) {
    if (use_more_bits(i, 28)) layers.push_back(i);
  }
  EXPECT_EQ(layers, (std::vector<int>{0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27}));
}

TEST(TypeRules, OneDimensionalAndNormTensorsKeepTheirType) {
  ModelLayout layout{false, 2, 2};
  EXPECT_EQ(choose_tensor_type({"blk.0.attn_norm.weight", 1, 256}, DType::F32, FileType::Q4_K_M, layout, false),
            DType::F32);
  EXPECT_EQ(choose_tensor_type({"blk.0.attn_q.bias", 1, 256}, DType::F32, FileType::F16, layout, false), DType::F32);
  EXPECT_EQ(choose_tensor_type({"blk.0.attn_q.weight", 2, 256}, DType::F32, FileType::BF16, layout, false),
            DType::BF16);
  // Not even a 32-value block fits: F16.
  EXPECT_EQ(choose_tensor_type({"blk.0.attn_q.weight", 2, 40}, DType::F32, FileType::Q4_K_M, layout, false),
            DType::F16);
}

// ------------------------------------------------------------ streaming writer

TEST(StreamWriter, WritesTheSameBytesAsWriter) {
  gguf::Writer reference;
  std::vector<std::pair<std::string, gguf::Value>> kv = {
      {"general.architecture", gguf::Value{std::string("llama")}},
      {"general.alignment", gguf::Value{uint32_t{64}}},
      {"x.count", gguf::Value{uint32_t{7}}},
  };
  for (const auto& [k, v] : kv) reference.set(k, v);
  std::vector<gguf::TensorSpec> specs = {
      {"a", DType::F32, {3}},
      {"empty", DType::F32, {0}},
      {"b", DType::Q8_0, {64, 2}},
      {"c", DType::F16, {5, 1, 1}},
  };
  std::vector<std::vector<uint8_t>> data;
  std::mt19937 rng(1);
  for (const auto& s : specs) {
    int64_t rows = 1;
    for (size_t d = 1; d < s.ne.size(); ++d) rows *= s.ne[d];
    std::vector<uint8_t> bytes(static_cast<size_t>(row_bytes(s.type, s.ne[0]) * rows));
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    reference.add_tensor(s.name, s.type, s.ne, bytes);
    data.push_back(bytes);
  }
  TempFile out("stream");
  {
    gguf::StreamWriter w(out.path(), kv, specs);
    // All data as one stream in pieces of 5 bytes that straddle tensors.
    std::vector<uint8_t> all;
    for (const auto& d : data) all.insert(all.end(), d.begin(), d.end());
    for (size_t i = 0; i < all.size(); i += 5) w.append(all.data() + i, std::min<size_t>(5, all.size() - i));
    EXPECT_EQ(w.current_tensor(), specs.size());
    w.finish();
  }
  std::ifstream in(out.path(), std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, reference.to_bytes());
}

TEST(StreamWriter, RejectsMisuse) {
  TempFile out("stream_bad");
  const std::vector<gguf::TensorSpec> one = {{"a", DType::F32, {2}}};
  {
    gguf::StreamWriter w(out.path(), {}, one);
    const float x[3] = {1, 2, 3};
    EXPECT_THROW(w.append(x, sizeof x), Error);  // 12 bytes into an 8-byte tensor
  }
  {
    gguf::StreamWriter w(out.path(), {}, one);
    const float x = 1;
    w.append(&x, sizeof x);
    EXPECT_EQ(w.remaining_in_current(), 4u);
    EXPECT_THROW(w.finish(), Error);
  }
  EXPECT_FALSE(fs::exists(out.path())) << "an unfinished file must be removed";
  using KV = std::vector<std::pair<std::string, gguf::Value>>;
  EXPECT_THROW(gguf::StreamWriter(out.path(), KV{{"k", gguf::Value{uint8_t{1}}}, {"k", gguf::Value{uint8_t{2}}}}, one),
               Error);
  EXPECT_THROW(gguf::StreamWriter(out.path(), {}, {{"a", DType::F32, {2}}, {"a", DType::F32, {2}}}), Error);
  EXPECT_THROW(gguf::StreamWriter(out.path(), {}, {{"q", DType::Q4_K, {100}}}), Error);
  EXPECT_THROW(gguf::StreamWriter("/nonexistent/dir/x.gguf", {}, one), Error);
}

// ------------------------------------------------------------ quantize command errors

TEST(QuantizeModel, RefusesToOverwriteItsInput) {
  TempFile copy("self");
  fs::copy_file(kModels + "rand-qwen3.f32.gguf", copy.path());
  QuantizeOptions options;
  EXPECT_THROW(quantize_model_file(copy.path(), copy.path(), options), Error);
  EXPECT_EQ(fs::file_size(copy.path()), fs::file_size(kModels + "rand-qwen3.f32.gguf"));
}

TEST(QuantizeModel, RequantizesAQuantizedFile) {
  // Q8_0 -> Q4_0 goes through F32; the result must load and stay close to the Q8_0 weights.
  TempFile out("requant");
  QuantizeOptions options;
  options.file_type = FileType::Q4_0;
  options.pure = true;
  const auto plan = quantize_model_file(kModels + "rand-qwen2.q8_0.gguf", out.path(), options);
  EXPECT_FALSE(plan.empty());
  const auto model = Model::load(out.path());
  EXPECT_EQ(dtype_name(model->weights().layers[0].wq.type), "Q4_0");
  EXPECT_EQ(model->file().get_int("general.file_type"), 2);
}

// ------------------------------------------------------------ synthetic models

// Published sizes: Qwen3-0.6B has 0.44B non-embedding parameters, Qwen2.5-1.5B
// (the base of DeepSeek-R1-Distill-Qwen-1.5B) 1.31B, both with 151936-token
// embeddings of width 1024 / 1536.
TEST(SynthModel, PresetsHaveThePublishedParameterCounts) {
  auto non_embedding = [](const SynthPreset& p) {
    uint64_t n = 0;
    for (const auto& s : synth_tensor_specs(p)) {
      if (s.name == "token_embd.weight" || s.name == "output.weight") continue;
      uint64_t e = 1;
      for (int64_t d : s.ne) e *= static_cast<uint64_t>(d);
      n += e;
    }
    return n;
  };
  const SynthPreset* qwen3 = find_synth_preset("qwen3-0.6b");
  const SynthPreset* r1 = find_synth_preset("r1-distill-qwen-1.5b");
  ASSERT_NE(qwen3, nullptr);
  ASSERT_NE(r1, nullptr);
  EXPECT_NEAR(static_cast<double>(non_embedding(*qwen3)) / 1e9, 0.44, 0.005);
  EXPECT_NEAR(static_cast<double>(non_embedding(*r1)) / 1e9, 1.31, 0.005);
  EXPECT_EQ(find_synth_preset("nope"), nullptr);
}

// A tiny qwen3 with the 512-token vocabulary of the reference models, so the
// test runs in milliseconds; row lengths of 256 give real K-quant blocks.
SynthPreset tiny_preset(bool qwen2) {
  SynthPreset p;
  p.name = "tiny";
  p.model_name = "Tiny";
  p.arch = qwen2 ? "qwen2" : "qwen3";
  p.n_layer = 3;
  p.n_embd = 256;
  p.n_head = qwen2 ? 4 : 2;
  p.n_head_kv = qwen2 ? 2 : 1;
  p.head_dim = qwen2 ? 64 : 128;  // qwen3: q dim 256 = n_embd, k/v dim 128
  p.n_ff = 256;
  p.n_vocab = 512;
  p.context_length = 4096;
  p.rope_base = 1e6f;
  p.norm_eps = 1e-6f;
  p.tied_embeddings = !qwen2;
  p.qkv_bias = qwen2;
  p.qk_norm = !qwen2;
  return p;
}

std::vector<float> dequantized(const gguf::TensorInfo& t) {
  std::vector<float> v(static_cast<size_t>(t.elements()));
  kernels::scalar::dequantize_row(t.type, t.data, v.data(), t.elements());
  return v;
}

TEST(SynthModel, WritesALoadableModelWithTheRequestedStatistics) {
  for (bool qwen2 : {false, true}) {
    SCOPED_TRACE(qwen2 ? "qwen2" : "qwen3");
    const SynthPreset preset = tiny_preset(qwen2);
    TempFile f16("synth_f16"), quantized("synth_q"), f16_one_thread("synth_f16_1");
    SynthOptions o;
    o.preset = &preset;
    o.vocab_path = kModels + "rand-qwen3.f32.gguf";
    o.seed = 5;
    o.n_threads = 2;
    o.file_type = FileType::F16;
    o.out_path = f16.path();
    write_synth_model(o);
    // The tied qwen3 gets the Q4_K_M mix; qwen2 the cheaper Q8_0 (the
    // untied Q4_K_M rules are covered by the llama-quantize comparisons).
    o.file_type = qwen2 ? FileType::Q8_0 : FileType::Q4_K_M;
    o.out_path = quantized.path();
    const auto plan = write_synth_model(o);
    int n_q6 = 0;
    for (const auto& p : plan) n_q6 += p.to == DType::Q6_K;
    // Q4_K_M: Q6_K for the tied embedding (the output matrix), and for
    // attn_v and ffn_down in layer 2, the only one of 3 where use_more_bits
    // holds (i >= 7 * 3 / 8).
    EXPECT_EQ(n_q6, qwen2 ? 0 : 1 + 1 + 1);

    if (!qwen2) {
      // Same seed, different thread count: identical file.
      o.file_type = FileType::F16;
      o.n_threads = 1;
      o.out_path = f16_one_thread.path();
      write_synth_model(o);
      std::ifstream a(f16.path(), std::ios::binary), b(f16_one_thread.path(), std::ios::binary);
      const std::vector<char> bytes_a((std::istreambuf_iterator<char>(a)), {});
      const std::vector<char> bytes_b((std::istreambuf_iterator<char>(b)), {});
      EXPECT_TRUE(bytes_a == bytes_b);
    }

    for (const std::string& path : {f16.path(), quantized.path()}) {
      const auto model = Model::load(path);
      EXPECT_EQ(model->config().arch, qwen2 ? "qwen2" : "qwen3");
      EXPECT_EQ(model->config().n_vocab, 512);
      EXPECT_EQ(model->file().get_string("tokenizer.ggml.pre"), "qwen2");
      Context ctx(*model, ContextOptions{.n_ctx = 16, .n_batch = 16, .n_threads = 2});
      const std::vector<TokenId> prompt = {1, 2, 3, 4};
      ctx.eval(prompt);
      for (int i = 0; i < ctx.n_vocab(); ++i) ASSERT_TRUE(std::isfinite(ctx.logits()[i]));
    }

    const auto file = gguf::File::open(f16.path());
    const auto qfile = gguf::File::open(quantized.path());
    // Matrices: N(0, 1/sqrt(row length)); norms: 1 ± 0.1; biases: ± 0.1.
    const std::vector<float> wq = dequantized(*file->find_tensor("blk.1.attn_q.weight"));
    double sum = 0, sq = 0;
    for (float v : wq) {
      sum += v;
      sq += static_cast<double>(v) * v;
    }
    const double mean = sum / static_cast<double>(wq.size());
    const double sd = std::sqrt(sq / static_cast<double>(wq.size()) - mean * mean);
    EXPECT_NEAR(mean, 0.0, 0.003);
    EXPECT_NEAR(sd, 1.0 / 16.0, 0.002);
    for (float v : dequantized(*file->find_tensor("blk.2.ffn_norm.weight"))) {
      ASSERT_GE(v, 0.9f);
      ASSERT_LE(v, 1.1f);
    }
    if (qwen2) {
      for (float v : dequantized(*file->find_tensor("blk.0.attn_k.bias"))) ASSERT_LE(std::fabs(v), 0.1f);
    }
    // The file type changes only the storage: quantized values follow the F16 ones.
    const std::vector<float> wq_q = dequantized(*qfile->find_tensor("blk.1.attn_q.weight"));
    double err = 0;
    for (size_t i = 0; i < wq.size(); ++i) err += std::fabs(wq_q[i] - wq[i]);
    EXPECT_LT(err / static_cast<double>(wq.size()), 0.1 / 16.0);
  }
}

TEST(SynthModel, RejectsAVocabularyOfTheWrongSize) {
  SynthOptions o;
  o.preset = find_synth_preset("qwen3-0.6b");
  o.vocab_path = kModels + "rand-qwen3.f32.gguf";  // 512 tokens, not 151936
  TempFile out("synth_bad");
  o.out_path = out.path();
  EXPECT_THROW(write_synth_model(o), Error);
  EXPECT_FALSE(fs::exists(out.path()));
}

// ------------------------------------------------------------ bench measurements

// Bytes one generated token reads, computed from the file's tensor table.
uint64_t expected_bytes_per_token(const gguf::File& f) {
  uint64_t total = 0;
  const gguf::TensorInfo* embd = f.find_tensor("token_embd.weight");
  const bool tied = f.find_tensor("output.weight") == nullptr;
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.n_dims < 2) continue;
    if (&t == embd && !tied) continue;
    total += t.nbytes;
  }
  return total + embd->nbytes / static_cast<uint64_t>(embd->ne[1]);
}

TEST(Bench, WeightFootprint) {
  for (const char* name : {"rand-qwen3-kq.q4_k_m.gguf", "rand-qwen2-kq.q6_k.gguf", "rand-llama.f16.gguf"}) {
    const auto model = Model::load(kModels + name);
    const bench::WeightFootprint f = bench::weight_footprint(*model);
    EXPECT_EQ(f.bytes_per_token, expected_bytes_per_token(model->file())) << name;
    uint64_t all = 0;
    for (const auto& t : model->file().tensors()) all += t.nbytes;
    EXPECT_EQ(f.file_tensor_bytes, all);
  }
}

TEST(Bench, MeanAndSampleStandardDeviation) {
  const bench::MeanSd r = bench::mean_sd({2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0});
  EXPECT_DOUBLE_EQ(r.mean, 5.0);
  EXPECT_NEAR(r.sd, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_EQ(bench::mean_sd({3.0}).sd, 0.0);
}

TEST(Bench, SpeedTestsTimeEveryRepetition) {
  const auto model = Model::load(kModels + "rand-qwen3-kq.q4_k_m.gguf");
  Context ctx(*model, ContextOptions{.n_ctx = 32, .n_batch = 16, .n_threads = 2});
  bench::SpeedOptions o;
  o.repetitions = 2;
  int calls = 0;
  o.progress = [&](std::string_view, int, int) { ++calls; };
  const bench::TestResult pp = bench::bench_prompt(ctx, 16, o);
  const bench::TestResult tg = bench::bench_generation(ctx, 8, o);
  EXPECT_EQ(pp.name, "pp16");
  EXPECT_EQ(tg.name, "tg8");
  for (const auto* r : {&pp, &tg}) {
    ASSERT_EQ(r->seconds.size(), 2u);
    ASSERT_EQ(r->tokens_per_sec.size(), 2u);
    EXPECT_GT(r->tps.mean, 0.0);
  }
  EXPECT_EQ(calls, 6);  // warm-up + 2 repetitions, twice
  EXPECT_EQ(ctx.n_past(), 8);
  // Every generated token is timed, and the tokens make up each repetition.
  ASSERT_EQ(tg.token_seconds.size(), 16u);
  EXPECT_TRUE(pp.token_seconds.empty());
  for (int rep = 0; rep < 2; ++rep) {
    double sum = 0;
    for (int i = 0; i < 8; ++i) {
      EXPECT_GT(tg.token_seconds[static_cast<size_t>(8 * rep + i)], 0.0);
      sum += tg.token_seconds[static_cast<size_t>(8 * rep + i)];
    }
    EXPECT_NEAR(sum, tg.seconds[static_cast<size_t>(rep)], 1e-9);
  }
}

// tg with and without a per-token hook: in each repetition the hook runs
// after every other token, on the logits that token produced, and each
// result has its own tokens' times.
TEST(Bench, PairedGenerationHooksEveryOtherToken) {
  const auto model = Model::load(kModels + "rand-qwen3-kq.q4_k_m.gguf");
  Context ctx(*model, ContextOptions{.n_ctx = 32, .n_batch = 16, .n_threads = 2});
  bench::SpeedOptions o;
  o.repetitions = 3;
  std::vector<std::string> progress;
  o.progress = [&](std::string_view test, int, int) { progress.emplace_back(test); };
  int calls = 0;
  const bench::TokenHook hook = [&](const float* logits, int n_vocab, TokenId chosen) {
    ++calls;
    EXPECT_EQ(logits, ctx.logits());
    EXPECT_EQ(n_vocab, ctx.n_vocab());
    EXPECT_GE(chosen, 0);
    EXPECT_LT(chosen, n_vocab);
    EXPECT_GE(ctx.n_past(), 1);
  };
  const auto [plain, hooked] = bench::bench_generation_paired(ctx, 8, o, hook, "+hook");
  EXPECT_EQ(plain.name, "tg8");
  EXPECT_EQ(hooked.name, "tg8+hook");
  EXPECT_EQ(calls, 3 * 4);
  for (const auto* r : {&plain, &hooked}) {
    EXPECT_EQ(r->n_gen, 8);
    ASSERT_EQ(r->seconds.size(), 3u);
    ASSERT_EQ(r->token_seconds.size(), 12u);
    for (int rep = 0; rep < 3; ++rep) {
      double sum = 0;
      for (int i = 0; i < 4; ++i) sum += r->token_seconds[static_cast<size_t>(4 * rep + i)];
      EXPECT_NEAR(sum, r->seconds[static_cast<size_t>(rep)], 1e-9);
      EXPECT_NEAR(r->tokens_per_sec[static_cast<size_t>(rep)], 4 / sum, 1e-6 * 4 / sum);
    }
    EXPECT_GT(r->tps.mean, 0.0);
  }
  ASSERT_EQ(progress.size(), 4u);  // warm-up + 3 repetitions
  EXPECT_EQ(progress[0], "tg8 / tg8+hook");
  EXPECT_THROW(bench::bench_generation_paired(ctx, 1, o, hook, "+hook"), Error);  // no plain token
}

// At a depth the context is filled once per test and each repetition runs
// after those tokens: the test's name says so, and the timed tokens are the
// ones of the same test without depth (the fill has its own generator).
TEST(Bench, TestsRunAtADepthOfContext) {
  const auto model = Model::load(kModels + "rand-qwen3-kq.q4_k_m.gguf");
  Context ctx(*model, ContextOptions{.n_ctx = 40, .n_batch = 16, .n_threads = 2});
  bench::SpeedOptions o;
  o.repetitions = 2;
  std::vector<int> fills;
  o.progress = [&](std::string_view, int rep, int) {
    if (rep < 0) fills.push_back(ctx.n_past());
  };
  o.depth = 20;
  const bench::TestResult pp = bench::bench_prompt(ctx, 12, o);
  EXPECT_EQ(ctx.n_past(), 32);
  const bench::TestResult tg = bench::bench_generation(ctx, 8, o);
  EXPECT_EQ(ctx.n_past(), 28);
  EXPECT_EQ(pp.name, "pp12 @ d20");
  EXPECT_EQ(tg.name, "tg8 @ d20");
  EXPECT_EQ(pp.n_depth, 20);
  EXPECT_EQ(tg.n_depth, 20);
  EXPECT_EQ(fills.size(), 2u);  // once per test
  ASSERT_EQ(tg.token_seconds.size(), 16u);
  // The last logits of a tg test at depth 20 differ from those without
  // depth: the tokens saw a different context.
  const std::vector<float> deep(ctx.logits(), ctx.logits() + ctx.n_vocab());
  o.depth = 0;
  const bench::TestResult shallow = bench::bench_generation(ctx, 8, o);
  EXPECT_EQ(shallow.name, "tg8");
  EXPECT_EQ(ctx.n_past(), 8);
  EXPECT_NE(std::vector<float>(ctx.logits(), ctx.logits() + ctx.n_vocab()), deep);
  o.depth = 40;  // no room left
  EXPECT_THROW(bench::bench_generation(ctx, 8, o), Error);
}

// With read_beside, one probe read just before each timed tg repetition
// (after the warm-up's tokens, after the previous repetition's) and one
// after the last; prompt tests take none. The paired test shares its reads.
TEST(Bench, GenerationReadsTheProbeBesideEachRepetition) {
  const auto model = Model::load(kModels + "rand-qwen3-kq.q4_k_m.gguf");
  Context ctx(*model, ContextOptions{.n_ctx = 32, .n_batch = 16, .n_threads = 2});
  bench::SpeedOptions o;
  o.repetitions = 2;
  std::vector<int> past_at_read;
  o.read_beside = [&] {
    past_at_read.push_back(ctx.n_past());
    return 1e9 * static_cast<double>(past_at_read.size());
  };
  bench::bench_prompt(ctx, 16, o);
  EXPECT_TRUE(past_at_read.empty());
  const bench::TestResult tg = bench::bench_generation(ctx, 8, o);
  EXPECT_EQ(tg.reads_beside, (std::vector<double>{1e9, 2e9, 3e9}));
  EXPECT_EQ(past_at_read, (std::vector<int>{4, 8, 8}));  // 4 warm-up tokens, then 8 a repetition
  past_at_read.clear();
  const auto [plain, hooked] = bench::bench_generation_paired(
      ctx, 8, o, [](const float*, int, TokenId) {}, "+hook");
  EXPECT_EQ(plain.reads_beside, (std::vector<double>{1e9, 2e9, 3e9}));
  EXPECT_EQ(hooked.reads_beside, plain.reads_beside);
}

// Each repetition's weight bytes per second over the faster read beside it;
// steady when the two reads are within 10% of each other.
TEST(Bench, RepetitionSharesSetEachRepetitionAgainstItsReads) {
  bench::TestResult t;
  t.tokens_per_sec = {100.0, 80.0, 50.0};
  t.reads_beside = {50e9, 48e9, 30e9, 29e9};
  const auto shares = bench::repetition_shares(t, 400'000'000);
  ASSERT_EQ(shares.size(), 3u);
  EXPECT_DOUBLE_EQ(shares[0].weight_bytes_per_second, 40e9);
  EXPECT_DOUBLE_EQ(shares[0].fraction, 40e9 / 50e9);
  EXPECT_TRUE(shares[0].steady);
  EXPECT_DOUBLE_EQ(shares[1].fraction, 32e9 / 48e9);  // the faster of 48 and 30
  EXPECT_FALSE(shares[1].steady);                     // the memory changed speed
  EXPECT_DOUBLE_EQ(shares[2].read_before, 30e9);
  EXPECT_DOUBLE_EQ(shares[2].read_after, 29e9);
  EXPECT_DOUBLE_EQ(shares[2].fraction, 20e9 / 30e9);
  EXPECT_TRUE(shares[2].steady);
  t.reads_beside.pop_back();  // not one read per boundary: nothing to set against
  EXPECT_TRUE(bench::repetition_shares(t, 400'000'000).empty());
}

TEST(Bench, ReadBandwidthProbe) {
  ThreadPool pool(2);
  const bench::Bandwidth b = bench::ReadProbe(pool, 8u << 20).measure(pool, 2);
  EXPECT_GT(b.bytes_per_second, 1e8);  // any machine reads faster than 100 MB/s
  EXPECT_EQ(b.buffer_bytes, 8u << 20);
  EXPECT_EQ(b.threads, 2);
  ASSERT_EQ(b.run_bytes_per_second.size(), 2u);
  EXPECT_DOUBLE_EQ(b.bytes_per_second, std::max(b.run_bytes_per_second[0], b.run_bytes_per_second[1]));
}

// glassbox bench keeps one probe for the whole run and measures it before
// and after the tests: the same buffer, read again with any pool.
TEST(Bench, ReadProbeMeasuresItsBufferRepeatedly) {
  ThreadPool pool(2);
  bench::ReadProbe probe(pool, (4u << 20) + 5);
  EXPECT_EQ(probe.buffer_bytes(), (4u << 20));  // whole 8-byte words
  const bench::Bandwidth first = probe.measure(pool, 3);
  ASSERT_EQ(first.run_bytes_per_second.size(), 3u);
  EXPECT_EQ(first.buffer_bytes, probe.buffer_bytes());
  EXPECT_DOUBLE_EQ(first.bytes_per_second,
                   *std::max_element(first.run_bytes_per_second.begin(), first.run_bytes_per_second.end()));
  ThreadPool one(1);
  const bench::Bandwidth again = probe.measure(one, 0);  // at least one run
  EXPECT_EQ(again.threads, 1);
  EXPECT_EQ(again.runs, 1);
  ASSERT_EQ(again.run_bytes_per_second.size(), 1u);
  EXPECT_GT(again.bytes_per_second, 1e8);
}

}  // namespace
}  // namespace glassbox::quantize
