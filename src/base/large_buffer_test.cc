#include "base/large_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "base/error.h"

namespace glassbox {

TEST(LargeBuffer, ZeroedWritableAndSized) {
  for (size_t bytes : {size_t{1}, size_t{4096}, size_t{1} << 20, (size_t{5} << 20) + 12345}) {
    LargeBuffer b(bytes);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(b.size(), bytes);
    auto* p = static_cast<unsigned char*>(b.data());
    size_t nonzero = 0;
    for (size_t i = 0; i < bytes; ++i) nonzero += p[i] != 0;
    EXPECT_EQ(nonzero, 0u) << bytes;
    std::memset(p, 0xab, bytes);  // every byte writable (ASan would flag a short mapping)
    EXPECT_EQ(p[bytes - 1], 0xab);
  }
}

TEST(LargeBuffer, BigBuffersStartOnAHugePageBoundary) {
  LargeBuffer b(size_t{3} << 20);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % (size_t{2} << 20), 0u);
}

TEST(LargeBuffer, MovesOwnership) {
  LargeBuffer a(size_t{2} << 20);
  void* p = a.data();
  static_cast<char*>(p)[100] = 7;
  LargeBuffer b(std::move(a));
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(static_cast<char*>(b.data())[100], 7);
  LargeBuffer c(64);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.size(), size_t{2} << 20);
}

TEST(LargeBuffer, EmptyIsNull) {
  LargeBuffer b(0);
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.size(), 0u);
  LargeArray<float> a;
  EXPECT_TRUE(a.empty());
}

TEST(LargeArray, IndexesElements) {
  LargeArray<uint16_t> a(size_t{3} << 20);
  EXPECT_EQ(a.size(), size_t{3} << 20);
  a[a.size() - 1] = 0xbeef;
  EXPECT_EQ(a.data()[a.size() - 1], 0xbeef);
  EXPECT_EQ(a[0], 0);
}

TEST(LargeBuffer, ImpossibleSizeIsAClearError) { EXPECT_THROW(LargeBuffer(SIZE_MAX - 100), Error); }

}  // namespace glassbox
