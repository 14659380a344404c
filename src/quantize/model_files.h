// Whole-model writers built on the row quantizers: `quantize_model_file`
// (glassbox quantize) converts a GGUF model to another file type, and
// `write_synth_model` (glassbox synth-model) writes a random-weight model with
// the exact shapes and metadata of a real one, for benchmarks. Both stream
// tensor by tensor in bounded chunks of rows, so multi-GB models need little
// memory, and split each chunk's work over a thread pool.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "quantize/quantize.h"
#include "tensor/dtype.h"

namespace glassbox::quantize {

// (bytes of tensor data written so far, total); called from the calling thread.
using WriteProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct TensorPlan {
  std::string name;
  std::vector<int64_t> ne;
  DType from = DType::F32;
  DType to = DType::F32;
  uint64_t bytes_to = 0;
};

// ------------------------------------------------------------ quantize

struct QuantizeOptions {
  FileType file_type = FileType::Q8_0;
  bool pure = false;  // no per-tensor rules (llama-quantize --pure)
  int n_threads = 0;  // 0: one per hardware thread
  WriteProgressFn progress;
};

// The type every tensor of `file` gets (see type_rules.h). Throws Error when a
// tensor needs converting from a type glassbox cannot read.
std::vector<TensorPlan> plan_quantization(const gguf::File& file, FileType file_type, bool pure);

// Converts `in_path` to `out_path`: metadata copied, general.file_type and
// general.quantization_version set as llama-quantize sets them, tensors in the
// input's order, each converted to its planned type through F32 (a tensor
// already of its planned type is copied byte for byte). Returns the plan.
std::vector<TensorPlan> quantize_model_file(const std::string& in_path, const std::string& out_path,
                                            const QuantizeOptions& options);

// ------------------------------------------------------------ synth-model

// Shapes and hyperparameters of a real model to imitate.
struct SynthPreset {
  std::string_view name;        // "qwen3-0.6b"
  std::string_view model_name;  // "Qwen3-0.6B"
  std::string_view arch;        // GGUF general.architecture
  int n_layer = 0;
  int n_embd = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_ff = 0;
  int64_t n_vocab = 0;
  uint32_t context_length = 0;
  float rope_base = 0;
  float norm_eps = 0;
  bool tied_embeddings = false;  // no output.weight
  bool qkv_bias = false;         // attn_{q,k,v}.bias (qwen2)
  bool qk_norm = false;          // attn_{q,k}_norm.weight (qwen3)
};

std::span<const SynthPreset> synth_presets();
const SynthPreset* find_synth_preset(std::string_view name);  // nullptr if unknown

// The tensors of a preset in llama.cpp's conversion order, as F32.
std::vector<gguf::TensorSpec> synth_tensor_specs(const SynthPreset& preset);

struct SynthOptions {
  const SynthPreset* preset = nullptr;
  FileType file_type = FileType::F16;
  std::string vocab_path;  // GGUF whose tokenizer.* keys are copied (e.g. qwen3.vocab.gguf)
  std::string out_path;
  uint64_t seed = 1;
  int n_threads = 0;
  WriteProgressFn progress;
};

// Writes the model. Weights: every matrix N(0, 1/sqrt(row length)), norm
// weights 1 + U(-0.1, 0.1), biases U(-0.1, 0.1), the same values for the same
// seed whatever the thread count and file type (the file type only decides
// how they are stored). Throws Error when the vocabulary's size differs from
// the preset's. Returns the plan.
std::vector<TensorPlan> write_synth_model(const SynthOptions& options);

}  // namespace glassbox::quantize
