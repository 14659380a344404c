// SHA-256 (OpenSSL), hex helpers, constant-time comparison and random ids.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace glassbox::audit {

using Digest = std::array<uint8_t, 32>;

// Incremental hashing (large files).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::string_view data);
  void update(std::span<const uint8_t> data);
  Digest finish();  // the object can be reused after finish()

 private:
  void* ctx_;  // EVP_MD_CTX
};

Digest sha256(std::string_view data);
std::string sha256_hex(std::string_view data);
// Hashes a whole file; throws glassbox::Error naming the file if it cannot be read.
std::string sha256_file_hex(const std::string& path);

std::string to_hex(std::span<const uint8_t> bytes);
// 64 hex digits (either case) -> digest; nullopt on anything else.
std::optional<Digest> digest_from_hex(std::string_view hex);

// Equality whose running time depends only on the lengths (API key hashes).
bool constant_time_equal(std::string_view a, std::string_view b);

// `bytes` random bytes from the OpenSSL CSPRNG, as lowercase hex.
std::string random_hex(size_t bytes);

}  // namespace glassbox::audit
