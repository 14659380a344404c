#include "quantize/type_rules.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>

#include "quantize/quantize.h"

namespace glassbox::quantize {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

// "blk.12.ffn_down.weight" -> 12; -1 when the name has no layer index.
int layer_index(std::string_view name) {
  if (name.substr(0, 4) != "blk.") return -1;
  const char* begin = name.data() + 4;
  const char* end = name.data() + name.size();
  int layer = -1;
  const auto [ptr, ec] = std::from_chars(begin, end, layer);
  if (ec != std::errc() || ptr == end || *ptr != '.' || layer < 0) return -1;
  return layer;
}

bool is_quantized_type(DType t) { return t != DType::F32 && t != DType::F16 && t != DType::BF16; }

// The type a K-quant falls back to when the row length does not fit its
// 256-value block (llama.cpp's tensor_type_fallback).
DType fallback_for_row_length(DType wanted, int64_t ne0) {
  if (ne0 % traits(wanted).block_elems == 0) return wanted;
  DType fallback = DType::F16;
  if (wanted == DType::Q4_K) fallback = DType::Q5_0;
  if (wanted == DType::Q6_K) fallback = DType::Q8_0;
  if (ne0 % traits(fallback).block_elems != 0) fallback = DType::F16;
  return fallback;
}

}  // namespace

std::optional<FileType> parse_file_type(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static constexpr std::pair<std::string_view, FileType> kNames[] = {
      {"F32", FileType::F32},   {"F16", FileType::F16},   {"BF16", FileType::BF16},     {"Q8_0", FileType::Q8_0},
      {"Q4_0", FileType::Q4_0}, {"Q5_0", FileType::Q5_0}, {"Q4_K_M", FileType::Q4_K_M}, {"Q6_K", FileType::Q6_K},
  };
  for (const auto& [n, t] : kNames) {
    if (upper == n) return t;
  }
  return std::nullopt;
}

std::string_view file_type_name(FileType type) {
  switch (type) {
    case FileType::F32:
      return "F32";
    case FileType::F16:
      return "F16";
    case FileType::BF16:
      return "BF16";
    case FileType::Q8_0:
      return "Q8_0";
    case FileType::Q4_0:
      return "Q4_0";
    case FileType::Q5_0:
      return "Q5_0";
    case FileType::Q4_K_M:
      return "Q4_K_M";
    case FileType::Q6_K:
      return "Q6_K";
  }
  return "?";
}

std::string_view file_type_description(uint32_t id) {
  switch (id) {
    case 0:
      return "all F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 7:
      return "Q8_0";
    case 8:
      return "Q5_0";
    case 9:
      return "Q5_1";
    case 10:
      return "Q2_K - Medium";
    case 11:
      return "Q3_K - Small";
    case 12:
      return "Q3_K - Medium";
    case 13:
      return "Q3_K - Large";
    case 14:
      return "Q4_K - Small";
    case 15:
      return "Q4_K - Medium";
    case 16:
      return "Q5_K - Small";
    case 17:
      return "Q5_K - Medium";
    case 18:
      return "Q6_K";
    case 32:
      return "BF16";
    default:
      return "unknown type";
  }
}

DType default_tensor_type(FileType type) {
  switch (type) {
    case FileType::F32:
      return DType::F32;
    case FileType::F16:
      return DType::F16;
    case FileType::BF16:
      return DType::BF16;
    case FileType::Q8_0:
      return DType::Q8_0;
    case FileType::Q4_0:
      return DType::Q4_0;
    case FileType::Q5_0:
      return DType::Q5_0;
    case FileType::Q4_K_M:
      return DType::Q4_K;
    case FileType::Q6_K:
      return DType::Q6_K;
  }
  return DType::F32;
}

bool use_more_bits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

ModelLayout describe_layout(const std::vector<TensorShape>& tensors, int block_count) {
  ModelLayout layout;
  layout.tied_embeddings = true;
  int max_layer = -1;
  for (const TensorShape& t : tensors) {
    if (t.name == "output.weight") layout.tied_embeddings = false;
    if (contains(t.name, "attn_v.weight")) ++layout.n_attn_v;
    max_layer = std::max(max_layer, layer_index(t.name));
  }
  layout.n_layer = block_count > 0 ? block_count : max_layer + 1;
  return layout;
}

bool is_quantizable(const TensorShape& tensor) {
  return tensor.n_dims >= 2 && ends_with(tensor.name, "weight") && !contains(tensor.name, "_norm.weight");
}

DType choose_tensor_type(const TensorShape& tensor, DType stored, FileType ftype, const ModelLayout& layout,
                         bool pure) {
  if (!is_quantizable(tensor)) return stored;
  const DType base = default_tensor_type(ftype);
  if (!is_quantized_type(base)) return base;  // F32/F16/BF16: every matrix, no rules

  DType chosen = base;
  if (!pure) {
    const bool is_output =
        tensor.name == "output.weight" || (layout.tied_embeddings && tensor.name == "token_embd.weight");
    if (is_output) {
      if (tensor.ne0 % traits(base).block_elems != 0) {
        chosen = DType::Q8_0;
      } else if (base != DType::Q8_0) {
        chosen = DType::Q6_K;
      }
    } else if (ftype == FileType::Q4_K_M) {
      // llama.cpp counts attn_v tensors in file order and takes the layer of
      // ffn_down from n_layer; for the usual one-of-each-per-layer models
      // both are the layer index.
      const int layer = layer_index(tensor.name);
      if (contains(tensor.name, "attn_v.weight") && layer >= 0 && use_more_bits(layer, layout.n_attn_v)) {
        chosen = DType::Q6_K;
      } else if (contains(tensor.name, "ffn_down") && layer >= 0 && use_more_bits(layer, layout.n_layer)) {
        chosen = DType::Q6_K;
      }
    }
  }
  return fallback_for_row_length(chosen, tensor.ne0);
}

}  // namespace glassbox::quantize
