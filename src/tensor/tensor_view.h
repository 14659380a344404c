// A typed, non-owning view of a 2-D (or 1-D) weight tensor: the dtype lives
// with the pointer, never apart from it. ne[0] is the row length (the
// contiguous dimension, as in ggml), ne[1] the number of rows.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace glassbox {

// The packed forms of a matrix for one-token products (kernels::pack_rows16,
// kernels/block_layouts.h).
enum class Rows16Layout : uint8_t {
  Q4_K,
  Q4_K_Quads,   // the Q4_K form, four groups of 16 rows interleaved block by block
  Q6_K_SixBit,  // three of every four values whole in bytes
  Q6_K_Quads,   // the six-bit Q6_K form, four groups of 16 rows interleaved block by block
  Q8_0,         // 16 rows' scales together, four values per row per 32-bit lane
  Q4_0,         // the same for Q4_0: four bytes (eight values) per row per lane
  Q5_0_AsQ8_0,  // Q5_0's values widened to bytes, in the Q8_0 form (1.55x the rows)
};

struct TensorView {
  DType type = DType::F32;
  const uint8_t* data = nullptr;
  int64_t ne[4] = {1, 1, 1, 1};
  int64_t row_stride = 0;  // bytes between consecutive rows
  // The same Q4_K, Q6_K, Q8_0, Q4_0 or Q5_0 matrix packed for one-token products
  // (kernels::pack_rows16), when the model made that copy; else null.
  const uint8_t* rows16 = nullptr;
  Rows16Layout rows16_layout = Rows16Layout::Q4_K;  // what rows16 holds

  // A matrix: `rows` rows of `cols` values of `type`, `row_stride` bytes apart.
  static TensorView matrix(DType type, const uint8_t* data, int64_t cols, int64_t rows, int64_t row_stride) {
    TensorView view;
    view.type = type;
    view.data = data;
    view.ne[0] = cols;
    view.ne[1] = rows;
    view.row_stride = row_stride;
    return view;
  }

  int64_t cols() const { return ne[0]; }
  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  const uint8_t* row(int64_t r) const { return data + r * row_stride; }
  explicit operator bool() const { return data != nullptr; }
};

}  // namespace glassbox
