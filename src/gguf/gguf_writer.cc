// GGUF v3 writer. Output is streamed so large models (the quantizer's) need
// not be assembled in memory twice.
#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include "gguf/gguf.h"

namespace glassbox::gguf {

namespace {

constexpr uint64_t kDefaultAlignment = 32;

class Sink {
 public:
  explicit Sink(std::ostream& out) : out_(out) {}
  template <class T>
  void put(T value) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &value, sizeof(T));
    write(bytes, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    write(s.data(), s.size());
  }
  void write(const void* data, size_t n) {
    out_.write(static_cast<const char*>(data), static_cast<std::streamsize>(n));
    written_ += n;
  }
  void pad_to(uint64_t alignment) {
    static const char zeros[256] = {};
    while (written_ % alignment != 0) {
      const uint64_t gap = alignment - written_ % alignment;
      write(zeros, static_cast<size_t>(std::min<uint64_t>(gap, sizeof(zeros))));
    }
  }
  uint64_t written() const { return written_; }

 private:
  std::ostream& out_;
  uint64_t written_ = 0;
};

void put_value(Sink& sink, const Value& value);

void put_payload(Sink& sink, const Value& value) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) {
          sink.put<uint8_t>(x ? 1 : 0);
        } else if constexpr (std::is_same_v<T, std::string>) {
          sink.put_string(x);
        } else if constexpr (std::is_same_v<T, Array>) {
          sink.put<uint32_t>(static_cast<uint32_t>(x.elem_type));
          sink.put<uint64_t>(x.items.size());
          for (const Value& item : x.items) {
            if (item.type() != x.elem_type) {
              throw Error("gguf writer: array of " + std::string(value_type_name(x.elem_type)) + " holds a " +
                          std::string(value_type_name(item.type())) + " item");
            }
            put_payload(sink, item);
          }
        } else {
          sink.put<T>(x);
        }
      },
      value.v);
}

void put_value(Sink& sink, const Value& value) {
  sink.put<uint32_t>(static_cast<uint32_t>(value.type()));
  put_payload(sink, value);
}

}  // namespace

void Writer::set(std::string key, Value value) {
  for (auto& [k, v] : kv_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  kv_.emplace_back(std::move(key), std::move(value));
}

namespace {

// Validates a tensor declaration (1..4 dims, ne >= 0, ne[0] a multiple of
// the block size, no overflow) and returns its data size in bytes.
uint64_t checked_tensor_bytes(const std::string& name, DType type, const std::vector<int64_t>& ne) {
  const std::optional<DTypeTraits> tr = dtype_traits(static_cast<uint32_t>(type));
  if (!tr) throw Error("gguf writer: tensor '" + name + "' has an unknown type");
  if (ne.empty() || ne.size() > 4) {
    throw Error("gguf writer: tensor '" + name + "' must have 1 to 4 dimensions");
  }
  int64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 0) throw Error("gguf writer: tensor '" + name + "' has a negative dimension");
    if (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows)) {
      throw Error("gguf writer: tensor '" + name + "' is too large");
    }
  }
  if (ne[0] % tr->block_elems != 0) {
    throw Error("gguf writer: tensor '" + name + "' ne[0] is not a multiple of the " + std::string(tr->name) +
                " block size");
  }
  int64_t expected = 0;
  if (__builtin_mul_overflow(row_bytes(type, ne[0]), rows, &expected)) {
    throw Error("gguf writer: tensor '" + name + "' is too large");
  }
  return static_cast<uint64_t>(expected);
}

}  // namespace

void Writer::add_tensor(std::string name, DType type, std::vector<int64_t> ne, std::vector<uint8_t> data) {
  // Type and rank first, then duplicates, then sizes: the order of the checks
  // decides which message a doubly-bad tensor gets.
  if (!dtype_traits(static_cast<uint32_t>(type))) {
    throw Error("gguf writer: tensor '" + name + "' has an unknown type");
  }
  if (ne.empty() || ne.size() > 4) {
    throw Error("gguf writer: tensor '" + name + "' must have 1 to 4 dimensions");
  }
  for (const Pending& t : tensors_) {
    if (t.name == name) throw Error("gguf writer: duplicate tensor name '" + name + "'");
  }
  const uint64_t expected = checked_tensor_bytes(name, type, ne);
  if (expected != data.size()) {
    throw Error("gguf writer: tensor '" + name + "' has " + std::to_string(data.size()) + " bytes of data, expected " +
                std::to_string(expected));
  }
  tensors_.push_back(Pending{std::move(name), type, std::move(ne), std::move(data)});
}

namespace {

uint64_t writer_alignment(const std::vector<std::pair<std::string, Value>>& kv) {
  for (const auto& [k, v] : kv) {
    if (k != "general.alignment") continue;
    const auto a = v.as_int();
    if (!a || *a <= 0 || !std::has_single_bit(static_cast<uint64_t>(*a))) {
      throw Error("gguf writer: general.alignment must be a non-zero power of two");
    }
    return static_cast<uint64_t>(*a);
  }
  return kDefaultAlignment;
}

}  // namespace

// Header: magic, version, counts, metadata, tensor table, padding up to the
// data section. `sizes[i]` is the data size of tensors[i].
static void write_header(Sink& sink, const std::vector<std::pair<std::string, Value>>& kv, const auto& tensors,
                         const std::vector<uint64_t>& sizes, uint64_t alignment) {
  sink.put<uint32_t>(0x46554747);  // "GGUF"
  sink.put<uint32_t>(3);
  sink.put<uint64_t>(tensors.size());
  sink.put<uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    sink.put_string(key);
    put_value(sink, value);
  }
  uint64_t offset = 0;
  size_t i = 0;
  for (const auto& t : tensors) {
    sink.put_string(t.name);
    sink.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) sink.put<int64_t>(n);
    sink.put<uint32_t>(static_cast<uint32_t>(t.type));
    sink.put<uint64_t>(offset);
    offset += sizes[i++];
    offset = (offset + alignment - 1) / alignment * alignment;
  }
  sink.pad_to(alignment);
}

// Shared by write() and to_bytes(): header, metadata, tensor infos, padding, data.
static void write_gguf(std::ostream& out, const std::vector<std::pair<std::string, Value>>& kv, const auto& tensors) {
  const uint64_t alignment = writer_alignment(kv);
  Sink sink(out);
  std::vector<uint64_t> sizes;
  for (const auto& t : tensors) sizes.push_back(t.data.size());
  write_header(sink, kv, tensors, sizes, alignment);
  for (const auto& t : tensors) {
    sink.write(t.data.data(), t.data.size());
    sink.pad_to(alignment);
  }
}

void Writer::write(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(path + ": cannot create file for writing");
  write_gguf(out, kv_, tensors_);
  out.flush();
  if (!out) throw Error(path + ": write failed");
  out.close();
  if (out.fail()) throw Error(path + ": write failed on close");
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::ostringstream out(std::ios::binary);
  write_gguf(out, kv_, tensors_);
  const std::string s = std::move(out).str();
  return std::vector<uint8_t>(s.begin(), s.end());
}

// ------------------------------------------------------------ StreamWriter

struct StreamWriter::Impl {
  std::ofstream out;
  Sink sink{out};
};

StreamWriter::StreamWriter(const std::string& path, std::vector<std::pair<std::string, Value>> metadata,
                           std::vector<TensorSpec> tensors)
    : path_(path) {
  for (size_t i = 0; i < metadata.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (metadata[j].first == metadata[i].first) {
        throw Error("gguf writer: metadata key '" + metadata[i].first + "' is set twice");
      }
    }
  }
  alignment_ = writer_alignment(metadata);
  for (size_t i = 0; i < tensors.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (tensors[j].name == tensors[i].name) {
        throw Error("gguf writer: duplicate tensor name '" + tensors[i].name + "'");
      }
    }
    sizes_.push_back(checked_tensor_bytes(tensors[i].name, tensors[i].type, tensors[i].ne));
  }
  impl_ = std::make_unique<Impl>();
  impl_->out.open(path, std::ios::binary | std::ios::trunc);
  if (!impl_->out) throw Error(path + ": cannot create file for writing");
  write_header(impl_->sink, metadata, tensors, sizes_, alignment_);
  if (!impl_->out) throw Error(path + ": write failed");
  // Zero-sized tensors at the front are complete already.
  while (current_ < sizes_.size() && sizes_[current_] == 0) close_current_tensor();
}

StreamWriter::~StreamWriter() {
  if (finished_ || !impl_) return;
  impl_->out.close();
  std::remove(path_.c_str());
}

uint64_t StreamWriter::remaining_in_current() const {
  return current_ < sizes_.size() ? sizes_[current_] - written_in_current_ : 0;
}

void StreamWriter::close_current_tensor() {
  impl_->sink.pad_to(alignment_);
  ++current_;
  written_in_current_ = 0;
}

void StreamWriter::append(const void* data, size_t n) {
  if (finished_) throw Error(path_ + ": append after finish");
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (current_ >= sizes_.size()) {
      throw Error(path_ + ": more tensor data appended than the tensors declared hold");
    }
    const uint64_t take = std::min<uint64_t>(n, remaining_in_current());
    impl_->sink.write(bytes, static_cast<size_t>(take));
    bytes += take;
    n -= static_cast<size_t>(take);
    written_in_current_ += take;
    while (current_ < sizes_.size() && remaining_in_current() == 0) close_current_tensor();
  }
  if (!impl_->out) throw Error(path_ + ": write failed");
}

void StreamWriter::finish() {
  if (finished_) return;
  if (current_ < sizes_.size()) {
    throw Error(path_ + ": tensor data incomplete (" + std::to_string(remaining_in_current()) +
                " bytes missing in tensor #" + std::to_string(current_) + ")");
  }
  impl_->out.flush();
  if (!impl_->out) throw Error(path_ + ": write failed");
  impl_->out.close();
  if (impl_->out.fail()) throw Error(path_ + ": write failed on close");
  finished_ = true;
}

}  // namespace glassbox::gguf
