// Zeroed memory for the big, long-lived arrays that are streamed through
// (packed weights, the KV cache, the bandwidth probe's buffer), asking the
// kernel for 2 MiB transparent huge pages.
//
// Why: reading memory with 4 KiB pages costs a TLB miss every 4 KiB, and the
// hardware prefetchers stop at each 4 KiB page boundary. Measured on the
// 2-vCPU development VM (AVX-512 loads, 2 threads, 1 GiB, best of 10):
// 28 GB/s with 4 KiB pages, 32 GB/s with huge pages. Debian's default
// (transparent_hugepage=madvise) only gives huge pages to memory that asks
// for them with madvise(MADV_HUGEPAGE), which plain new/std::vector do not.
// Where the kernel refuses, the memory is ordinary pages; nothing else
// changes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace glassbox {

class LargeBuffer {
 public:
  LargeBuffer() = default;
  // Throws glassbox::Error when the memory cannot be had.
  explicit LargeBuffer(size_t bytes);
  ~LargeBuffer();
  LargeBuffer(LargeBuffer&& o) noexcept { *this = std::move(o); }
  LargeBuffer& operator=(LargeBuffer&& o) noexcept;
  LargeBuffer(const LargeBuffer&) = delete;
  LargeBuffer& operator=(const LargeBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return size_; }
  // Whether madvise(MADV_HUGEPAGE) was accepted (the kernel may still use
  // small pages where it finds no free huge page).
  bool huge_pages_advised() const { return advised_; }

 private:
  void release();
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  void* data_ = nullptr;
  size_t size_ = 0;
  bool advised_ = false;
};

// A fixed-size array of trivially copyable T in a LargeBuffer, zeroed.
template <typename T>
class LargeArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  LargeArray() = default;
  explicit LargeArray(size_t n) : buffer_(n * sizeof(T)), n_(n) {}

  T* data() { return static_cast<T*>(buffer_.data()); }
  const T* data() const { return static_cast<const T*>(buffer_.data()); }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }

 private:
  LargeBuffer buffer_;
  size_t n_ = 0;
};

}  // namespace glassbox
