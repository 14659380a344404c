// GGUF reader. Every count, length, offset and shape read from the file is
// checked against the bytes that are really there before it is used, so a
// malformed file raises glassbox::Error instead of allocating absurd amounts
// of memory or reading past the end of the mapping.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <unordered_set>

#include "gguf/gguf.h"

namespace glassbox::gguf {

static_assert(std::endian::native == std::endian::little, "the GGUF reader assumes a little-endian host");

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian uint32
constexpr uint32_t kMaxDims = 4;
// Arrays of arrays are legal GGUF but nothing real nests deeply; the limit
// keeps recursion (and stack use) bounded on hostile input.
constexpr int kMaxArrayDepth = 8;
// Smallest possible encodings, used to bound counts before allocating.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                  // key length, type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // name len, n_dims, ne[0], type, offset

std::optional<uint64_t> fixed_value_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
    case ValueType::INT8:
    case ValueType::BOOL:
      return 1;
    case ValueType::UINT16:
    case ValueType::INT16:
      return 2;
    case ValueType::UINT32:
    case ValueType::INT32:
    case ValueType::FLOAT32:
      return 4;
    case ValueType::UINT64:
    case ValueType::INT64:
    case ValueType::FLOAT64:
      return 8;
    case ValueType::STRING:
    case ValueType::ARRAY:
      return std::nullopt;
  }
  return std::nullopt;
}

bool is_known_value_type(uint32_t id) { return id <= static_cast<uint32_t>(ValueType::FLOAT64); }

// Reads little-endian fields from an untrusted byte range, naming what it
// was reading when the bytes run out.
class Parser {
 public:
  Parser(const uint8_t* base, uint64_t size, const std::string& path) : base_(base), size_(size), path_(path) {}

  [[noreturn]] void fail(const std::string& what) const { throw Error(path_ + ": " + what); }

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  void set_context(std::string context) { context_ = std::move(context); }
  const std::string& context() const { return context_; }

  void need(uint64_t n) const {
    if (n > remaining()) {
      std::ostringstream msg;
      msg << "truncated: " << context_ << " needs " << n << " bytes at offset " << pos_ << " but the file has only "
          << remaining() << " left";
      fail(msg.str());
    }
  }

  template <class T>
  T read() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, base_ + pos_, sizeof(T));  // unaligned-safe
    pos_ += sizeof(T);
    return value;
  }

  std::string read_string() {
    const uint64_t length = read<uint64_t>();
    need(length);  // before allocating: a length like 2^60 must not allocate
    std::string s(reinterpret_cast<const char*>(base_ + pos_), length);
    pos_ += length;
    return s;
  }

  Value read_value(ValueType type, int depth) {
    Value out;
    switch (type) {
      case ValueType::UINT8:
        out.v = read<uint8_t>();
        break;
      case ValueType::INT8:
        out.v = read<int8_t>();
        break;
      case ValueType::UINT16:
        out.v = read<uint16_t>();
        break;
      case ValueType::INT16:
        out.v = read<int16_t>();
        break;
      case ValueType::UINT32:
        out.v = read<uint32_t>();
        break;
      case ValueType::INT32:
        out.v = read<int32_t>();
        break;
      case ValueType::FLOAT32:
        out.v = read<float>();
        break;
      case ValueType::BOOL:
        out.v = read<uint8_t>() != 0;
        break;
      case ValueType::STRING:
        out.v = read_string();
        break;
      case ValueType::UINT64:
        out.v = read<uint64_t>();
        break;
      case ValueType::INT64:
        out.v = read<int64_t>();
        break;
      case ValueType::FLOAT64:
        out.v = read<double>();
        break;
      case ValueType::ARRAY:
        out.v = read_array(depth + 1);
        break;
    }
    return out;
  }

  Array read_array(int depth) {
    if (depth > kMaxArrayDepth) {
      fail(context_ + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
    }
    const uint32_t elem_id = read<uint32_t>();
    if (!is_known_value_type(elem_id)) {
      fail(context_ + ": array has unknown element value type " + std::to_string(elem_id));
    }
    const auto elem_type = static_cast<ValueType>(elem_id);
    const uint64_t count = read<uint64_t>();
    // The smallest encoding of one element bounds how many can fit in what
    // is left of the file; check before reserving memory.
    uint64_t min_elem_bytes = 8;  // string length prefix
    if (auto fixed = fixed_value_size(elem_type)) min_elem_bytes = *fixed;
    if (elem_type == ValueType::ARRAY) min_elem_bytes = 4 + 8;
    if (count > remaining() / min_elem_bytes) {
      std::ostringstream msg;
      msg << "truncated: " << context_ << ": array of " << count << " " << value_type_name(elem_type)
          << " items at offset " << pos_ << " needs more bytes than the " << remaining() << " left in the file";
      fail(msg.str());
    }
    Array array;
    array.elem_type = elem_type;
    array.items.reserve(count);
    for (uint64_t i = 0; i < count; ++i) array.items.push_back(read_value(elem_type, depth));
    return array;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& path_;
  std::string context_ = "header";
};

std::string quoted(std::string_view s) {
  std::string out = "'";
  out += s;
  out += "'";
  return out;
}

bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool add_overflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

}  // namespace

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8:
      return "UINT8";
    case ValueType::INT8:
      return "INT8";
    case ValueType::UINT16:
      return "UINT16";
    case ValueType::INT16:
      return "INT16";
    case ValueType::UINT32:
      return "UINT32";
    case ValueType::INT32:
      return "INT32";
    case ValueType::FLOAT32:
      return "FLOAT32";
    case ValueType::BOOL:
      return "BOOL";
    case ValueType::STRING:
      return "STRING";
    case ValueType::ARRAY:
      return "ARRAY";
    case ValueType::UINT64:
      return "UINT64";
    case ValueType::INT64:
      return "INT64";
    case ValueType::FLOAT64:
      return "FLOAT64";
  }
  return "UNKNOWN";
}

// ---------------------------------------------------------------- Value

std::optional<int64_t> Value::as_int() const {
  return std::visit(
      [](const auto& x) -> std::optional<int64_t> {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          return x ? 1 : 0;
        } else if constexpr (std::is_same_v<T, uint64_t>) {
          if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
          return static_cast<int64_t>(x);
        } else if constexpr (std::is_integral_v<T>) {
          return static_cast<int64_t>(x);
        } else {
          return std::nullopt;
        }
      },
      v);
}

std::optional<double> Value::as_float() const {
  if (const float* f = std::get_if<float>(&v)) return *f;
  if (const double* d = std::get_if<double>(&v)) return *d;
  if (type() == ValueType::BOOL) return std::nullopt;
  if (const uint64_t* u = std::get_if<uint64_t>(&v)) return static_cast<double>(*u);
  if (auto i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (const bool* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

const std::string* Value::as_string() const { return std::get_if<std::string>(&v); }
const Array* Value::as_array() const { return std::get_if<Array>(&v); }

namespace {

void render_string(std::ostringstream& out, const std::string& s) {
  out << '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out << '\\' << c;
    } else if (c == '\n') {
      out << "\\n";
    } else if (c == '\t') {
      out << "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out << "\\x" << hex[u >> 4] << hex[u & 15];
    } else {
      out << c;
    }
  }
  out << '"';
}

void render(std::ostringstream& out, const Value& value, size_t max_items) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          out << (x ? "true" : "false");
        } else if constexpr (std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>) {
          out << static_cast<int>(x);
        } else if constexpr (std::is_same_v<T, std::string>) {
          render_string(out, x);
        } else if constexpr (std::is_same_v<T, Array>) {
          out << '[';
          const size_t shown = std::min(max_items, x.items.size());
          for (size_t i = 0; i < shown; ++i) {
            if (i) out << ", ";
            render(out, x.items[i], max_items);
          }
          if (shown < x.items.size()) {
            out << (shown ? ", " : "") << "... (" << x.items.size() << " " << value_type_name(x.elem_type) << " items)";
          }
          out << ']';
        } else {
          out << x;
        }
      },
      value.v);
}

}  // namespace

std::string Value::to_string(size_t max_items) const {
  std::ostringstream out;
  out.precision(9);
  render(out, *this, max_items);
  return out.str();
}

// ---------------------------------------------------------------- TensorInfo

TensorView TensorInfo::view() const {
  TensorView view;
  view.type = type;
  view.data = data;
  for (int i = 0; i < 4; ++i) view.ne[i] = ne[i];
  view.row_stride = row_bytes(type, ne[0]);
  return view;
}

// ---------------------------------------------------------------- File

File::~File() {
  if (mapped_ && base_ != nullptr) munmap(const_cast<uint8_t*>(base_), size_);
}

std::unique_ptr<File> File::open(const std::string& path, const ProgressFn& progress) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  if (st.st_size == 0) {
    ::close(fd);
    throw Error(path + ": truncated: the file is empty (not a GGUF file)");
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  void* mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (mapping == MAP_FAILED) throw Error(path + ": cannot mmap: " + std::strerror(map_errno));

  std::unique_ptr<File> file(new File());
  file->path_ = path;
  file->base_ = static_cast<const uint8_t*>(mapping);
  file->size_ = size;
  file->mapped_ = true;  // from here on the destructor unmaps, also on a parse error
  file->parse(progress);
  return file;
}

std::unique_ptr<File> File::from_memory(const uint8_t* data, size_t size, std::string name) {
  std::unique_ptr<File> file(new File());
  file->path_ = std::move(name);
  file->base_ = data;
  file->size_ = size;
  file->mapped_ = false;
  file->parse({});
  return file;
}

void File::parse(const ProgressFn& progress) {
  Parser in(base_, size_, path_);
  auto report = [&](uint64_t done) {
    if (progress) progress(done, size_);
  };

  // Header.
  in.set_context("header (magic)");
  const uint32_t magic = in.read<uint32_t>();
  if (magic != kMagic) {
    std::string shown;
    for (int i = 0; i < 4; ++i) {
      const char c = static_cast<char>((magic >> (8 * i)) & 0xff);
      shown += (c >= 0x20 && c < 0x7f) ? c : '?';
    }
    in.fail("not a GGUF file: bad magic '" + shown + "' (expected 'GGUF')");
  }
  in.set_context("header (version)");
  version_ = in.read<uint32_t>();
  if (version_ == 1) in.fail("GGUF version 1 is not supported (only 2 and 3)");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffff) == 0 && (__builtin_bswap32(version_) == 2 || __builtin_bswap32(version_) == 3)) {
      in.fail("big-endian GGUF files are not supported");
    }
    in.fail("GGUF version " + std::to_string(version_) + " is not supported (only 2 and 3)");
  }
  in.set_context("header (tensor count)");
  const uint64_t n_tensors = in.read<uint64_t>();
  in.set_context("header (metadata count)");
  const uint64_t n_kv = in.read<uint64_t>();
  if (n_kv > in.remaining() / kMinKvBytes) {
    in.fail("truncated: header declares " + std::to_string(n_kv) + " metadata entries, more than the " +
            std::to_string(in.remaining()) + " bytes left in the file can hold");
  }
  if (n_tensors > in.remaining() / kMinTensorInfoBytes) {
    in.fail("truncated: header declares " + std::to_string(n_tensors) + " tensors, more than the " +
            std::to_string(in.remaining()) + " bytes left in the file can hold");
  }
  report(in.pos());

  // Metadata.
  kv_.reserve(n_kv);
  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    in.set_context("metadata entry " + std::to_string(i) + " (key)");
    std::string key = in.read_string();
    in.set_context("metadata entry " + std::to_string(i) + " (" + quoted(key) + ")");
    if (!keys.insert(key).second) in.fail("duplicate metadata key " + quoted(key));
    const uint32_t type_id = in.read<uint32_t>();
    if (!is_known_value_type(type_id)) {
      in.fail("metadata key " + quoted(key) + " has unknown value type " + std::to_string(type_id));
    }
    Value value = in.read_value(static_cast<ValueType>(type_id), 0);
    kv_.emplace_back(std::move(key), std::move(value));
  }
  report(in.pos());

  if (const Value* a = find("general.alignment")) {
    const std::optional<int64_t> alignment = a->as_int();
    if (!alignment || a->type() == ValueType::BOOL) {
      in.fail("general.alignment must be an integer, got " + std::string(value_type_name(a->type())));
    }
    if (*alignment <= 0 || !std::has_single_bit(static_cast<uint64_t>(*alignment))) {
      in.fail("general.alignment " + std::to_string(*alignment) + " is not a non-zero power of two");
    }
    alignment_ = static_cast<uint64_t>(*alignment);
  } else {
    alignment_ = 32;
  }

  // Tensor infos.
  tensors_.reserve(n_tensors);
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string index = "tensor info " + std::to_string(i);
    in.set_context(index + " (name)");
    TensorInfo t;
    t.name = in.read_string();
    const std::string label = index + " (" + quoted(t.name) + ")";
    in.set_context(label);
    if (!names.insert(t.name).second) in.fail("duplicate tensor name " + quoted(t.name));
    const uint32_t n_dims = in.read<uint32_t>();
    if (n_dims < 1 || n_dims > kMaxDims) {
      in.fail(label + ": n_dims " + std::to_string(n_dims) + " is not between 1 and 4");
    }
    t.n_dims = static_cast<int>(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t raw = in.read<uint64_t>();
      if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        in.fail(label + ": dimension " + std::to_string(d) + " is negative (" +
                std::to_string(static_cast<int64_t>(raw)) + ")");
      }
      t.ne[d] = static_cast<int64_t>(raw);
    }
    const uint32_t type_id = in.read<uint32_t>();
    const std::optional<DTypeTraits> traits = dtype_traits(type_id);
    if (!traits) in.fail(label + ": unknown tensor type id " + std::to_string(type_id));
    t.type = static_cast<DType>(type_id);
    t.offset = in.read<uint64_t>();

    // Shape against type: rows must hold whole blocks.
    if (t.ne[0] % traits->block_elems != 0) {
      in.fail(label + ": ne[0] = " + std::to_string(t.ne[0]) + " is not a multiple of the " +
              std::string(traits->name) + " block size " + std::to_string(traits->block_elems));
    }
    // Every partial product of the dimensions must fit in int64 (rows() is
    // ne[1] * ne[2] * ne[3] even when ne[0] is 0), so the zero dimensions of
    // an empty tensor are left out of the check rather than hiding the others.
    uint64_t nonzero_product = 1;
    for (int d = 0; d < 4; ++d) {
      if (t.ne[d] == 0) continue;
      if (mul_overflows(nonzero_product, static_cast<uint64_t>(t.ne[d]), &nonzero_product) ||
          nonzero_product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        in.fail(label + ": element count overflows (the product of the non-zero dimensions exceeds 2^63 - 1)");
      }
    }
    // Likewise every byte count derived from them (a row's bytes, the
    // tensor's) must fit in int64, also when another dimension is 0.
    uint64_t nonzero_bytes = 0;
    if (mul_overflows(nonzero_product / static_cast<uint64_t>(traits->block_elems),
                      static_cast<uint64_t>(traits->block_bytes), &nonzero_bytes) ||
        nonzero_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      in.fail(label + ": byte size overflows");
    }
    uint64_t elements = 1;
    for (int d = 0; d < 4; ++d) elements *= static_cast<uint64_t>(t.ne[d]);
    t.nbytes = elements / static_cast<uint64_t>(traits->block_elems) * static_cast<uint64_t>(traits->block_bytes);
    if (t.offset % alignment_ != 0) {
      in.fail(label + ": data offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_) +
              " bytes");
    }
    tensors_.push_back(std::move(t));
    if (i % 64 == 63) report(in.pos());
  }

  // The data section starts at the next multiple of the alignment.
  uint64_t data_offset = 0;
  if (add_overflows(in.pos(), alignment_ - 1, &data_offset)) {
    in.fail("tensor data offset overflows");
  }
  data_offset -= data_offset % alignment_;
  if (data_offset > size_) {
    if (!tensors_.empty()) {
      in.fail("truncated: tensor data section starts at offset " + std::to_string(data_offset) +
              " (after alignment padding) but the file has only " + std::to_string(size_) + " bytes");
    }
    data_offset = size_;  // vocab-only files may end without padding
  }
  data_offset_ = data_offset;

  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorInfo& t = tensors_[i];
    uint64_t start = 0;
    uint64_t end = 0;
    if (add_overflows(data_offset_, t.offset, &start) || add_overflows(start, t.nbytes, &end) || end > size_) {
      std::ostringstream msg;
      msg << "truncated: tensor " << quoted(t.name) << " data at file offset " << data_offset_ << " + " << t.offset
          << " (" << t.nbytes << " bytes) runs past the end of the file (" << size_ << " bytes)";
      in.fail(msg.str());
    }
    t.data = base_ + start;
  }
  report(size_);
}

const Value* File::find(std::string_view key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, std::string_view key, const Value& v, std::string_view expected) {
  throw Error(path + ": metadata key '" + std::string(key) + "' is " + std::string(value_type_name(v.type())) +
              ", expected " + std::string(expected));
}

}  // namespace

std::optional<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  if (v->type() == ValueType::BOOL) wrong_type(path_, key, *v, "an integer");
  auto i = v->as_int();
  if (!i) wrong_type(path_, key, *v, "an integer");
  return i;
}

std::optional<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  auto f = v->as_float();
  if (!f) wrong_type(path_, key, *v, "a number");
  return f;
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  auto b = v->as_bool();
  if (!b) wrong_type(path_, key, *v, "a bool");
  return b;
}

std::optional<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const std::string* s = v->as_string();
  if (!s) wrong_type(path_, key, *v, "a string");
  return *s;
}

std::optional<std::vector<std::string>> File::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const Array* a = v->as_array();
  if (!a || a->elem_type != ValueType::STRING) wrong_type(path_, key, *v, "an array of strings");
  std::vector<std::string> out;
  out.reserve(a->items.size());
  for (const Value& item : a->items) out.push_back(*item.as_string());
  return out;
}

std::optional<std::vector<float>> File::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const Array* a = v->as_array();
  if (!a || a->elem_type == ValueType::STRING || a->elem_type == ValueType::ARRAY || a->elem_type == ValueType::BOOL) {
    wrong_type(path_, key, *v, "an array of numbers");
  }
  std::vector<float> out;
  out.reserve(a->items.size());
  for (const Value& item : a->items) out.push_back(static_cast<float>(*item.as_float()));
  return out;
}

std::optional<std::vector<int64_t>> File::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (!v) return std::nullopt;
  const Array* a = v->as_array();
  if (!a || a->elem_type == ValueType::STRING || a->elem_type == ValueType::ARRAY || a->elem_type == ValueType::BOOL ||
      a->elem_type == ValueType::FLOAT32 || a->elem_type == ValueType::FLOAT64) {
    wrong_type(path_, key, *v, "an array of integers");
  }
  std::vector<int64_t> out;
  out.reserve(a->items.size());
  for (const Value& item : a->items) {
    const auto i = item.as_int();
    if (!i) throw Error(path_ + ": metadata key '" + std::string(key) + "' holds a UINT64 too large for int64");
    out.push_back(*i);
  }
  return out;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  for (const TensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

}  // namespace glassbox::gguf
