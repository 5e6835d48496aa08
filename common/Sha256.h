#pragma once
// SHA-256 (FIPS 180-4), for model bundle checksums. Streaming so large weight files are hashed
// without holding them twice in memory.
#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace segnode {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t size);
  std::string hexDigest();  // finishes the hash; call once

 private:
  void* ctx_ = nullptr;  // OpenSSL EVP_MD_CTX when available
  void compress(const uint8_t* block);
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t bufferUsed_ = 0;
  uint64_t totalBytes_ = 0;
};

std::string sha256Hex(const void* data, size_t size);
std::string sha256File(const std::filesystem::path& path);  // throws Error(Io) if unreadable

}  // namespace segnode
