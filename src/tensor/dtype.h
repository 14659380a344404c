// Element types of GGUF tensors. The numeric values are ggml's `ggml_type`
// ids, exactly as they are stored in GGUF files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace glassbox {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

// Block geometry of a type: `block_elems` values are stored in `block_bytes`
// bytes. Plain types have block_elems == 1.
struct DTypeTraits {
  std::string_view name;
  int64_t block_elems;
  int64_t block_bytes;
  bool supported;  // glassbox can dequantize and compute with it
};

// Traits of a type id read from a file; nullopt when the id is unknown.
std::optional<DTypeTraits> dtype_traits(uint32_t id);

inline DTypeTraits traits(DType t) { return *dtype_traits(static_cast<uint32_t>(t)); }
inline std::string_view dtype_name(DType t) { return traits(t).name; }

// Bytes needed to store one row of `n` elements (n must be a multiple of the
// block size; callers validate that first).
inline int64_t row_bytes(DType t, int64_t n) {
  const DTypeTraits tr = traits(t);
  return n / tr.block_elems * tr.block_bytes;
}

}  // namespace glassbox
