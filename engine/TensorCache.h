#pragma once
// A caching CPU allocator for LibTorch (and oneDNN, which allocates through it).
//
// Why: a 3D U-Net tile allocates dozens of 30-300 MB activations and frees them again. glibc
// serves each from a fresh mmap and unmaps it on free, so the kernel zeroes and faults in
// gigabytes of pages for every tile: measured on the 1/4-width brain student (12 tiles of 128^3,
// 2 threads), 40 % of the time went to page faults. Tiles repeat the same shapes, so freed blocks
// of one tile serve the next exactly. Blocks are cached by exact size up to a byte budget; small
// requests go straight to the default allocator.
#include <cstddef>
#include <cstdint>

namespace segnode::engine {

struct TensorCacheStats {
  int64_t hits = 0, misses = 0;
  size_t cachedBytes = 0;
};

// Installs the cache as LibTorch's CPU allocator (idempotent). capBytes bounds the memory held in
// freed blocks; 0 picks min(4 GiB, physical memory / 8).
void installTensorCache(size_t capBytes = 0);
// Returns every cached block to the system (e.g. between jobs of different models).
void releaseTensorCache();
TensorCacheStats tensorCacheStats();

}  // namespace segnode::engine
