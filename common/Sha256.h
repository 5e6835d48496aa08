#pragma once
// SHA-256 through OpenSSL's EVP interface, which uses the CPU's SHA instructions (hashing was the
// largest CPU cost of ingest). Streaming, so large weight files are hashed without holding them
// twice in memory.
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX: OpenSSL stays out of this header

namespace segnode {

class Sha256 {
 public:
  Sha256();  // throws Error(Internal) if OpenSSL has no SHA-256 (a FIPS-restricted build)
  void update(const void* data, size_t size);
  std::string hexDigest();  // finishes the hash; call once

 private:
  struct Free { void operator()(evp_md_ctx_st* ctx) const; };
  std::unique_ptr<evp_md_ctx_st, Free> ctx_;
};

std::string sha256Hex(const void* data, size_t size);
std::string sha256File(const std::filesystem::path& path);  // throws Error(Io) if unreadable

}  // namespace segnode
