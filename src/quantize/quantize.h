// Row quantizers: float rows to the stored formats glassbox reads (F16, BF16,
// Q8_0, Q4_0, Q5_0, Q4_K, Q6_K). They follow ggml's reference quantizers
// (the `_ref` paths llama-quantize takes without an importance matrix) float
// operation for float operation, so a row quantized here is byte-identical to
// one quantized by llama-quantize; quantize_test.cc checks this against the
// reference GGUF files.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "tensor/dtype.h"

namespace glassbox::quantize {

// True for the types quantize_row can produce (F32 is a plain copy).
bool can_quantize_to(DType type);

// Writes row_bytes(type, n) bytes for the `n` floats at `src` into `dst`.
// `n` must be a multiple of the type's block size and `type` one of
// can_quantize_to(); throws glassbox::Error otherwise. Non-finite inputs give
// unspecified (but memory-safe) blocks.
void quantize_row(DType type, const float* src, uint8_t* dst, int64_t n);

// llama.cpp's file types ("general.file_type", llama_ftype): a default tensor
// type plus the rules that pick another one for some tensors.
enum class FileType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 7,
  Q5_0 = 8,
  Q4_K_M = 15,
  Q6_K = 18,
  BF16 = 32,
};

// "Q4_K_M", "F16", ... (case-insensitive) to a FileType; nullopt if unknown.
std::optional<FileType> parse_file_type(std::string_view name);
std::string_view file_type_name(FileType type);
// Name of any llama_ftype id as llama.cpp prints it ("Q4_K - Medium").
std::string_view file_type_description(uint32_t id);
// The tensor type a file type uses unless a rule says otherwise.
DType default_tensor_type(FileType type);

}  // namespace glassbox::quantize
