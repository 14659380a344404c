// Which type each tensor of a model gets for a file type: llama.cpp's
// llama_tensor_get_type rules for the file types glassbox writes, so that
// `glassbox quantize` produces the same mix as llama-quantize.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "quantize/quantize.h"
#include "tensor/dtype.h"

namespace glassbox::quantize {

// What the rules need to know about the whole model.
struct ModelLayout {
  bool tied_embeddings = false;  // no output.weight: token_embd doubles as the output matrix
  int n_attn_v = 0;              // number of attn_v.weight tensors
  int n_layer = 0;               // block count
};

// One tensor as the rules see it.
struct TensorShape {
  std::string_view name;
  int n_dims = 0;
  int64_t ne0 = 0;  // row length
};

// Builds the layout from the tensor names (n_layer from `block_count` when
// > 0, else one more than the largest "blk.N." index).
ModelLayout describe_layout(const std::vector<TensorShape>& tensors, int block_count);

// True when the tensor is a weight matrix the file type applies to: 2-D or
// more, name ending in "weight", not a norm. Others keep their stored type.
bool is_quantizable(const TensorShape& tensor);

// The type `tensor` gets in a file of type `ftype`; `stored` is its current
// type (kept for tensors that are not quantizable). With `pure`, the
// per-tensor rules are skipped (llama-quantize --pure) but the block-size
// fallback still applies.
//
// Rules for quantized file types (without `pure`):
//  * output.weight, and token_embd.weight when the embeddings are tied, use
//    Q6_K (Q8_0 when the file type is Q8_0 or the row length is not a
//    multiple of the default type's block);
//  * Q4_K_M: attn_v.weight and ffn_down.weight use Q6_K in the layers where
//    llama.cpp's use_more_bits(i, n) holds: the first and last eighth of the
//    layers and every third layer in between.
// Then, when the row length is not a multiple of the chosen type's block
// size, Q4_K falls back to Q5_0 and Q6_K to Q8_0 (F16 if even that does not fit).
DType choose_tensor_type(const TensorShape& tensor, DType stored, FileType ftype, const ModelLayout& layout, bool pure);

// llama.cpp's use_more_bits: layers that get more bits in *_M mixes.
bool use_more_bits(int layer, int n_layers);

}  // namespace glassbox::quantize
