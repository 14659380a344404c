#include "quantize/model_files.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <numbers>

#include "base/error.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "quantize/type_rules.h"

namespace glassbox::quantize {

namespace {

constexpr uint32_t kQuantizationVersion = 2;  // ggml's GGML_QNT_VERSION
// Floats converted per chunk: bounds memory (about 16 MiB of floats plus the
// converted rows) whatever the tensor's size.
constexpr int64_t kChunkFloats = int64_t{4} << 20;

// Fills rows [begin, end) of a tensor as floats at `dst` (ne0 floats per
// row). Called concurrently for disjoint ranges, so it must be thread-safe
// and must not throw (inputs are validated before streaming starts).
using RowSource = std::function<void(int64_t begin, int64_t end, float* dst)>;

int64_t tensor_rows(const std::vector<int64_t>& ne) {
  int64_t rows = 1;
  for (size_t d = 1; d < ne.size(); ++d) rows *= ne[d];
  return rows;
}

uint64_t tensor_bytes(DType type, const std::vector<int64_t>& ne) {
  return static_cast<uint64_t>(row_bytes(type, ne[0])) * static_cast<uint64_t>(tensor_rows(ne));
}

// Tracks bytes written over the whole file for the progress callback.
struct ProgressTracker {
  const WriteProgressFn* fn = nullptr;
  uint64_t done = 0;
  uint64_t total = 0;
  void add(uint64_t n) {
    done += n;
    if (fn && *fn) (*fn)(done, total);
  }
};

// Converts `rows` rows of `ne0` floats from `source` to `type` and appends
// them to `writer`, one chunk at a time, each chunk split over the pool.
void stream_converted(gguf::StreamWriter& writer, DType type, int64_t ne0, int64_t rows, const RowSource& source,
                      ThreadPool& pool, ProgressTracker& progress) {
  if (rows == 0 || ne0 == 0) return;
  const int64_t out_row_bytes = row_bytes(type, ne0);
  const int64_t chunk_rows = std::clamp<int64_t>(kChunkFloats / ne0, 1, rows);
  std::vector<float> floats(static_cast<size_t>(chunk_rows * ne0));
  std::vector<uint8_t> converted(static_cast<size_t>(chunk_rows * out_row_bytes));
  for (int64_t first = 0; first < rows; first += chunk_rows) {
    const int64_t n = std::min(chunk_rows, rows - first);
    pool.ParallelFor(n, [&](int64_t begin, int64_t end, int) {
      float* f = floats.data() + begin * ne0;
      source(first + begin, first + end, f);
      for (int64_t r = begin; r < end; ++r) {
        quantize_row(type, floats.data() + r * ne0, converted.data() + r * out_row_bytes, ne0);
      }
    });
    const uint64_t bytes = static_cast<uint64_t>(n * out_row_bytes);
    writer.append(converted.data(), bytes);
    progress.add(bytes);
  }
}

// Metadata with `key` removed and appended with `value` (gguf_set_val's
// behaviour: a replaced key moves to the end).
void set_last(std::vector<std::pair<std::string, gguf::Value>>& kv, const std::string& key, gguf::Value value) {
  std::erase_if(kv, [&](const auto& entry) { return entry.first == key; });
  kv.emplace_back(key, std::move(value));
}

gguf::Value u32(uint32_t v) { return gguf::Value{v}; }
gguf::Value f32(float v) { return gguf::Value{v}; }
gguf::Value str(std::string_view v) { return gguf::Value{std::string(v)}; }

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  return std::filesystem::equivalent(a, b, ec) && !ec;
}

// ------------------------------------------------------------ random weights

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// xoshiro256**: small, fast, good enough for benchmark weights. One
// generator per (seed, tensor, row) makes every value independent of how
// rows are split over threads.
class RowRng {
 public:
  RowRng(uint64_t seed, uint64_t tensor_index, uint64_t row) {
    uint64_t s = seed ^ (tensor_index * 0xd1b54a32d192ed03ull) ^ (row * 0x8cb92ba72f3d8dd7ull);
    for (uint64_t& word : state_) word = splitmix64(s);
  }
  uint64_t next() {
    const uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }
  // Uniform in [0, 1) with 24 random bits.
  float uniform() { return static_cast<float>(next() >> 40) * (1.0f / 16777216.0f); }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[4];
};

enum class InitKind { Matrix, Norm, Bias };

InitKind init_kind(const gguf::TensorSpec& spec) {
  if (spec.ne.size() >= 2) return InitKind::Matrix;
  if (spec.name.ends_with(".bias")) return InitKind::Bias;
  return InitKind::Norm;
}

// Fills rows [begin, end) of tensor `index` with its initial values.
void fill_random_rows(const gguf::TensorSpec& spec, uint64_t seed, uint64_t index, int64_t begin, int64_t end,
                      float* dst) {
  const int64_t ne0 = spec.ne[0];
  const InitKind kind = init_kind(spec);
  const float stddev = 1.0f / std::sqrt(static_cast<float>(ne0));
  for (int64_t r = begin; r < end; ++r, dst += ne0) {
    RowRng rng(seed, index, static_cast<uint64_t>(r));
    if (kind == InitKind::Matrix) {
      // Box-Muller: two normals from two uniforms.
      for (int64_t i = 0; i < ne0; i += 2) {
        const float u1 = 1.0f - rng.uniform();  // (0, 1]: log stays finite
        const float u2 = rng.uniform();
        const float radius = stddev * std::sqrt(-2.0f * std::log(u1));
        const float angle = 2.0f * std::numbers::pi_v<float> * u2;
        dst[i] = radius * std::cos(angle);
        if (i + 1 < ne0) dst[i + 1] = radius * std::sin(angle);
      }
    } else {
      const float center = kind == InitKind::Norm ? 1.0f : 0.0f;
      for (int64_t i = 0; i < ne0; ++i) dst[i] = center + 0.2f * rng.uniform() - 0.1f;
    }
  }
}

// The plan for tensors converted from F32-like data: the file type's rules
// applied to every spec.
std::vector<TensorPlan> plan_specs(const std::vector<gguf::TensorSpec>& specs, const std::vector<DType>& stored,
                                   FileType file_type, bool pure, int block_count) {
  std::vector<TensorShape> shapes;
  for (const auto& s : specs) shapes.push_back(TensorShape{s.name, static_cast<int>(s.ne.size()), s.ne[0]});
  const ModelLayout layout = describe_layout(shapes, block_count);
  std::vector<TensorPlan> plan;
  for (size_t i = 0; i < specs.size(); ++i) {
    TensorPlan p;
    p.name = specs[i].name;
    p.ne = specs[i].ne;
    p.from = stored[i];
    p.to = choose_tensor_type(shapes[i], stored[i], file_type, layout, pure);
    p.bytes_to = tensor_bytes(p.to, p.ne);
    plan.push_back(std::move(p));
  }
  return plan;
}

std::vector<gguf::TensorSpec> specs_of_plan(const std::vector<TensorPlan>& plan) {
  std::vector<gguf::TensorSpec> specs;
  for (const TensorPlan& p : plan) specs.push_back(gguf::TensorSpec{p.name, p.to, p.ne});
  return specs;
}

uint64_t total_bytes(const std::vector<TensorPlan>& plan) {
  uint64_t total = 0;
  for (const TensorPlan& p : plan) total += p.bytes_to;
  return total;
}

}  // namespace

// ------------------------------------------------------------ quantize

std::vector<TensorPlan> plan_quantization(const gguf::File& file, FileType file_type, bool pure) {
  std::vector<gguf::TensorSpec> specs;
  std::vector<DType> stored;
  for (const gguf::TensorInfo& t : file.tensors()) {
    specs.push_back(gguf::TensorSpec{t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims)});
    stored.push_back(t.type);
  }
  int block_count = 0;
  if (const auto arch = file.get_string("general.architecture")) {
    const auto n = file.get_int(*arch + ".block_count");
    if (n && *n > 0 && *n < (1 << 20)) block_count = static_cast<int>(*n);
  }
  std::vector<TensorPlan> plan = plan_specs(specs, stored, file_type, pure, block_count);
  for (const TensorPlan& p : plan) {
    if (p.from != p.to && !traits(p.from).supported) {
      throw Error(file.path() + ": tensor '" + p.name + "' is stored as " + std::string(dtype_name(p.from)) +
                  ", which glassbox cannot convert");
    }
    if (p.ne[0] % traits(p.to).block_elems != 0) {
      throw Error(file.path() + ": tensor '" + p.name + "' row length " + std::to_string(p.ne[0]) +
                  " does not fit the " + std::string(dtype_name(p.to)) + " block size");
    }
  }
  return plan;
}

std::vector<TensorPlan> quantize_model_file(const std::string& in_path, const std::string& out_path,
                                            const QuantizeOptions& options) {
  if (same_file(in_path, out_path)) {
    throw Error("quantize: output '" + out_path + "' is the input file");
  }
  const std::unique_ptr<gguf::File> in = gguf::File::open(in_path);
  const std::vector<TensorPlan> plan = plan_quantization(*in, options.file_type, options.pure);

  std::vector<std::pair<std::string, gguf::Value>> kv = in->metadata();
  set_last(kv, "general.quantization_version", u32(kQuantizationVersion));
  set_last(kv, "general.file_type", u32(static_cast<uint32_t>(options.file_type)));

  ThreadPool pool(options.n_threads);
  ProgressTracker progress{&options.progress, 0, total_bytes(plan)};
  gguf::StreamWriter writer(out_path, std::move(kv), specs_of_plan(plan));
  for (size_t i = 0; i < plan.size(); ++i) {
    const TensorPlan& p = plan[i];
    const gguf::TensorInfo& t = in->tensors()[i];
    if (p.from == p.to) {
      // Copy in chunks so that progress moves and pages can be dropped.
      constexpr uint64_t kCopyChunk = uint64_t{64} << 20;
      for (uint64_t off = 0; off < t.nbytes; off += kCopyChunk) {
        const uint64_t n = std::min(kCopyChunk, t.nbytes - off);
        writer.append(t.data + off, n);
        progress.add(n);
      }
      continue;
    }
    const int64_t ne0 = p.ne[0];
    const int64_t in_row_bytes = row_bytes(t.type, ne0);
    const RowSource source = [&](int64_t begin, int64_t end, float* dst) {
      for (int64_t r = begin; r < end; ++r) {
        kernels::dequantize_row(t.type, t.data + r * in_row_bytes, dst + (r - begin) * ne0, ne0);
      }
    };
    stream_converted(writer, p.to, ne0, tensor_rows(p.ne), source, pool, progress);
  }
  writer.finish();
  return plan;
}

// ------------------------------------------------------------ synth-model

std::span<const SynthPreset> synth_presets() {
  // Hyperparameters from the models' config.json files on Hugging Face.
  static constexpr SynthPreset kPresets[] = {
      {.name = "qwen3-0.6b",
       .model_name = "Qwen3-0.6B",
       .arch = "qwen3",
       .n_layer = 28,
       .n_embd = 1024,
       .n_head = 16,
       .n_head_kv = 8,
       .head_dim = 128,
       .n_ff = 3072,
       .n_vocab = 151936,
       .context_length = 40960,
       .rope_base = 1000000.0f,
       .norm_eps = 1e-6f,
       .tied_embeddings = true,
       .qkv_bias = false,
       .qk_norm = true},
      {.name = "r1-distill-qwen-1.5b",
       .model_name = "DeepSeek-R1-Distill-Qwen-1.5B",
       .arch = "qwen2",
       .n_layer = 28,
       .n_embd = 1536,
       .n_head = 12,
       .n_head_kv = 2,
       .head_dim = 128,
       .n_ff = 8960,
       .n_vocab = 151936,
       .context_length = 131072,
       .rope_base = 10000.0f,
       .norm_eps = 1e-6f,
       .tied_embeddings = false,
       .qkv_bias = true,
       .qk_norm = false},
  };
  return kPresets;
}

const SynthPreset* find_synth_preset(std::string_view name) {
  for (const SynthPreset& p : synth_presets()) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::vector<gguf::TensorSpec> synth_tensor_specs(const SynthPreset& p) {
  const int64_t embd = p.n_embd, q_dim = int64_t{p.n_head} * p.head_dim, kv_dim = int64_t{p.n_head_kv} * p.head_dim,
                ff = p.n_ff;
  std::vector<gguf::TensorSpec> specs;
  auto add = [&](std::string name, std::vector<int64_t> ne) {
    specs.push_back(gguf::TensorSpec{std::move(name), DType::F32, std::move(ne)});
  };
  add("token_embd.weight", {embd, p.n_vocab});
  add("output_norm.weight", {embd});
  if (!p.tied_embeddings) add("output.weight", {embd, p.n_vocab});
  for (int l = 0; l < p.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {embd});
    add(b + "attn_q.weight", {embd, q_dim});
    add(b + "attn_k.weight", {embd, kv_dim});
    add(b + "attn_v.weight", {embd, kv_dim});
    if (p.qkv_bias) {
      add(b + "attn_q.bias", {q_dim});
      add(b + "attn_k.bias", {kv_dim});
      add(b + "attn_v.bias", {kv_dim});
    }
    if (p.qk_norm) {
      add(b + "attn_q_norm.weight", {p.head_dim});
      add(b + "attn_k_norm.weight", {p.head_dim});
    }
    add(b + "attn_output.weight", {q_dim, embd});
    add(b + "ffn_norm.weight", {embd});
    add(b + "ffn_gate.weight", {embd, ff});
    add(b + "ffn_up.weight", {embd, ff});
    add(b + "ffn_down.weight", {ff, embd});
  }
  return specs;
}

std::vector<TensorPlan> write_synth_model(const SynthOptions& options) {
  if (options.preset == nullptr) throw Error("synth-model: no preset given");
  const SynthPreset& p = *options.preset;
  const std::unique_ptr<gguf::File> vocab = gguf::File::open(options.vocab_path);
  const auto tokens = vocab->get_string_array("tokenizer.ggml.tokens");
  if (!tokens) throw Error(options.vocab_path + ": no tokenizer.ggml.tokens (not a vocabulary file)");
  if (static_cast<int64_t>(tokens->size()) != p.n_vocab) {
    throw Error(options.vocab_path + ": vocabulary has " + std::to_string(tokens->size()) + " tokens, preset " +
                std::string(p.name) + " needs " + std::to_string(p.n_vocab));
  }

  const std::string a(p.arch);
  std::vector<std::pair<std::string, gguf::Value>> kv;
  kv.emplace_back("general.architecture", str(p.arch));
  kv.emplace_back("general.name", str(std::string(p.model_name) + " (synthetic, random weights)"));
  kv.emplace_back("general.description",
                  str("random weights with the shapes and metadata of " + std::string(p.model_name) +
                      ", written by glassbox synth-model (seed " + std::to_string(options.seed) +
                      "); for speed benchmarks only, its output is noise"));
  kv.emplace_back("general.file_type", u32(static_cast<uint32_t>(options.file_type)));
  kv.emplace_back("general.quantization_version", u32(kQuantizationVersion));
  kv.emplace_back(a + ".context_length", u32(p.context_length));
  kv.emplace_back(a + ".embedding_length", u32(static_cast<uint32_t>(p.n_embd)));
  kv.emplace_back(a + ".block_count", u32(static_cast<uint32_t>(p.n_layer)));
  kv.emplace_back(a + ".feed_forward_length", u32(static_cast<uint32_t>(p.n_ff)));
  kv.emplace_back(a + ".attention.head_count", u32(static_cast<uint32_t>(p.n_head)));
  kv.emplace_back(a + ".attention.head_count_kv", u32(static_cast<uint32_t>(p.n_head_kv)));
  kv.emplace_back(a + ".rope.freq_base", f32(p.rope_base));
  kv.emplace_back(a + ".attention.layer_norm_rms_epsilon", f32(p.norm_eps));
  if (p.head_dim * p.n_head != p.n_embd || p.qk_norm) {
    kv.emplace_back(a + ".attention.key_length", u32(static_cast<uint32_t>(p.head_dim)));
    kv.emplace_back(a + ".attention.value_length", u32(static_cast<uint32_t>(p.head_dim)));
  }
  for (const auto& [key, value] : vocab->metadata()) {
    if (key.starts_with("tokenizer.")) kv.emplace_back(key, value);
  }

  const std::vector<gguf::TensorSpec> specs = synth_tensor_specs(p);
  const std::vector<DType> stored(specs.size(), DType::F32);
  const std::vector<TensorPlan> plan = plan_specs(specs, stored, options.file_type, false, p.n_layer);

  ThreadPool pool(options.n_threads);
  ProgressTracker progress{&options.progress, 0, total_bytes(plan)};
  gguf::StreamWriter writer(options.out_path, std::move(kv), specs_of_plan(plan));
  for (size_t i = 0; i < plan.size(); ++i) {
    const gguf::TensorSpec& spec = specs[i];
    const RowSource source = [&](int64_t begin, int64_t end, float* dst) {
      fill_random_rows(spec, options.seed, i, begin, end, dst);
    };
    stream_converted(writer, plan[i].to, spec.ne[0], tensor_rows(spec.ne), source, pool, progress);
  }
  writer.finish();
  return plan;
}

}  // namespace glassbox::quantize
