// GGUF reader: memory-maps a file, validates every count, size, offset and
// shape against the file before use, and exposes metadata and tensors.
// Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
// Versions 2 and 3 are read; version 1 is rejected with a clear message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/error.h"
#include "tensor/dtype.h"
#include "tensor/tensor_view.h"

namespace glassbox::gguf {

// Metadata value type ids as stored in the file.
enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

std::string_view value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::UINT8;
  std::vector<Value> items;  // nested arrays allowed (elem_type == ARRAY)
};

// One metadata value. The variant index equals the GGUF value type id.
struct Value {
  std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool, std::string, Array, uint64_t,
               int64_t, double>
      v;

  ValueType type() const { return static_cast<ValueType>(v.index()); }
  // Any integer type (and bool) as int64; nullopt for other types or a
  // uint64 that does not fit.
  std::optional<int64_t> as_int() const;
  // Any integer or float type as double.
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const;
  const Array* as_array() const;
  // Human-readable rendering (arrays abbreviated after `max_items`).
  std::string to_string(size_t max_items = 8) const;
};

struct TensorInfo {
  std::string name;
  DType type = DType::F32;
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};
  uint64_t offset = 0;            // relative to the start of the tensor data section
  uint64_t nbytes = 0;            // validated: fits inside the file
  const uint8_t* data = nullptr;  // points into the mapping

  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  TensorView view() const;
};

// Called while the file is mapped and checked: (bytes done, bytes total).
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

class File {
 public:
  // Maps and validates `path`. Throws glassbox::Error naming the problem
  // (with the file path) for any malformed, truncated or unsupported file.
  static std::unique_ptr<File> open(const std::string& path, const ProgressFn& progress = {});
  // Same validation over bytes in memory (the caller keeps them alive). Used
  // by the fuzz target and tests.
  static std::unique_ptr<File> from_memory(const uint8_t* data, size_t size, std::string name = "<memory>");
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return size_; }
  uint64_t data_offset() const { return data_offset_; }  // start of tensor data

  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<double> get_float(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key) const;
  // Scalars: nullopt when the key is absent; throw Error when it exists with
  // an incompatible type (get_int rejects bool, floats and a uint64 above
  // INT64_MAX; get_float accepts any integer or float; get_bool wants BOOL).
  // Typed arrays; throw Error if the key exists with another type
  // (get_float_array accepts integer elements, get_int_array does not accept
  // floats or bools).
  std::optional<std::vector<std::string>> get_string_array(std::string_view key) const;
  std::optional<std::vector<float>> get_float_array(std::string_view key) const;
  std::optional<std::vector<int64_t>> get_int_array(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

 private:
  File() = default;
  void parse(const ProgressFn& progress);

  std::string path_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::vector<TensorInfo> tensors_;
};

// Writer: builds a GGUF v3 file (used by the benchmark-model generator,
// tests that make bad files, and the quantizer).
class Writer {
 public:
  // Sets a metadata value; a key set twice keeps its first position and the
  // last value. "general.alignment" (a power of two) sets the data alignment.
  void set(std::string key, Value value);
  // Adds a tensor; `data` must hold row_bytes(type, ne[0]) * rows bytes.
  // Throws Error for a bad shape (1..4 dims, ne >= 0, ne[0] a multiple of the
  // block size), a size mismatch or a duplicate name.
  void add_tensor(std::string name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data);
  void write(const std::string& path) const;  // throws Error on I/O failure
  std::vector<uint8_t> to_bytes() const;

 private:
  std::vector<std::pair<std::string, Value>> kv_;
  struct Pending {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<Pending> tensors_;
};

// A tensor declared to StreamWriter before its data exists.
struct TensorSpec {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;
};

// Streaming GGUF v3 writer for files too large to assemble in memory (the
// benchmark-model generator, the quantizer): the header (metadata and tensor
// table) is written on construction, then the tensors' data is appended in
// table order, each in as many pieces as the caller likes. The bytes are
// identical to Writer's for the same content.
class StreamWriter {
 public:
  // Checks the tensors as Writer::add_tensor does and the metadata (no key
  // twice; general.alignment a power of two), creates `path` and writes the
  // header. Throws Error naming the problem.
  StreamWriter(const std::string& path, std::vector<std::pair<std::string, Value>> metadata,
               std::vector<TensorSpec> tensors);
  // A file that was not finish()ed is incomplete: it is removed.
  ~StreamWriter();
  StreamWriter(const StreamWriter&) = delete;
  StreamWriter& operator=(const StreamWriter&) = delete;

  // Appends the next `n` bytes of data. Throws Error if they run past the end
  // of the last tensor; a piece may span several tensors.
  void append(const void* data, size_t n);
  // Index of the tensor the next byte belongs to (== tensor count when all
  // data is in) and how many bytes of it are still missing.
  size_t current_tensor() const { return current_; }
  uint64_t remaining_in_current() const;
  // Checks that every tensor is complete, flushes and closes. Throws Error
  // on a missing byte or an I/O failure.
  void finish();

 private:
  void close_current_tensor();

  std::string path_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<uint64_t> sizes_;  // data bytes of each tensor
  uint64_t alignment_ = 32;
  size_t current_ = 0;
  uint64_t written_in_current_ = 0;
  bool finished_ = false;
};

}  // namespace glassbox::gguf
