#include "base/large_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/error.h"

namespace glassbox {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

LargeBuffer::LargeBuffer(size_t bytes) {
  if (bytes == 0) return;
  if (bytes > SIZE_MAX / 2) throw Error("cannot allocate " + std::to_string(bytes) + " bytes: too large");
  // Below a huge page there is nothing to gain; above, map one huge page
  // more than needed so that the data can start on a huge-page boundary
  // (the kernel only backs aligned 2 MiB ranges with huge pages).
  const bool want_huge = bytes >= kHugePage / 2;
  const size_t span = want_huge ? round_up(bytes, kHugePage) : bytes;
  const size_t map_size = want_huge ? span + kHugePage : span;
  void* p = mmap(nullptr, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw Error("cannot allocate " + std::to_string(bytes) + " bytes: " + std::strerror(errno));
  mapping_ = p;
  mapping_size_ = map_size;
  data_ = p;
  size_ = bytes;
  if (!want_huge) return;
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  const uintptr_t aligned = round_up(start, kHugePage);
  // Give back the unaligned head and the unused tail.
  if (aligned > start) munmap(p, aligned - start);
  const uintptr_t end = aligned + span, map_end = start + map_size;
  if (map_end > end) munmap(reinterpret_cast<void*>(end), map_end - end);
  mapping_ = reinterpret_cast<void*>(aligned);
  mapping_size_ = span;
  data_ = mapping_;
#ifdef MADV_HUGEPAGE
  advised_ = madvise(mapping_, mapping_size_, MADV_HUGEPAGE) == 0;
#endif
}

LargeBuffer::~LargeBuffer() { release(); }

LargeBuffer& LargeBuffer::operator=(LargeBuffer&& o) noexcept {
  if (this != &o) {
    release();
    mapping_ = std::exchange(o.mapping_, nullptr);
    mapping_size_ = std::exchange(o.mapping_size_, 0);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    advised_ = std::exchange(o.advised_, false);
  }
  return *this;
}

void LargeBuffer::release() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
  mapping_ = data_ = nullptr;
  mapping_size_ = size_ = 0;
  advised_ = false;
}

}  // namespace glassbox
