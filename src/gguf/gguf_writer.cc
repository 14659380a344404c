// GGUF v3 writer. Output is streamed so large models (the quantizer's) need
// not be assembled in memory twice.
#include <bit>
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
              throw Error("gguf writer: array of " + std::string(value_type_name(x.elem_type)) +
                          " holds a " + std::string(value_type_name(item.type())) + " item");
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

void Writer::add_tensor(std::string name, DType type, std::vector<int64_t> ne,
                        std::vector<uint8_t> data) {
  const std::optional<DTypeTraits> tr = dtype_traits(static_cast<uint32_t>(type));
  if (!tr) throw Error("gguf writer: tensor '" + name + "' has an unknown type");
  if (ne.empty() || ne.size() > 4) {
    throw Error("gguf writer: tensor '" + name + "' must have 1 to 4 dimensions");
  }
  for (const Pending& t : tensors_) {
    if (t.name == name) throw Error("gguf writer: duplicate tensor name '" + name + "'");
  }
  int64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 0) throw Error("gguf writer: tensor '" + name + "' has a negative dimension");
    if (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows)) {
      throw Error("gguf writer: tensor '" + name + "' is too large");
    }
  }
  if (ne[0] % tr->block_elems != 0) {
    throw Error("gguf writer: tensor '" + name + "' ne[0] is not a multiple of the " +
                std::string(tr->name) + " block size");
  }
  int64_t expected = 0;
  if (__builtin_mul_overflow(row_bytes(type, ne[0]), rows, &expected) ||
      static_cast<uint64_t>(expected) != data.size()) {
    throw Error("gguf writer: tensor '" + name + "' has " + std::to_string(data.size()) +
                " bytes of data, expected " + std::to_string(expected));
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

// Shared by write() and to_bytes(): header, metadata, tensor infos, padding, data.
static void write_gguf(std::ostream& out, const std::vector<std::pair<std::string, Value>>& kv,
                       const auto& tensors) {
  const uint64_t alignment = writer_alignment(kv);
  Sink sink(out);
  sink.put<uint32_t>(0x46554747);  // "GGUF"
  sink.put<uint32_t>(3);
  sink.put<uint64_t>(tensors.size());
  sink.put<uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    sink.put_string(key);
    put_value(sink, value);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    sink.put_string(t.name);
    sink.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) sink.put<int64_t>(n);
    sink.put<uint32_t>(static_cast<uint32_t>(t.type));
    sink.put<uint64_t>(offset);
    offset += t.data.size();
    offset = (offset + alignment - 1) / alignment * alignment;
  }
  sink.pad_to(alignment);
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

}  // namespace glassbox::gguf
