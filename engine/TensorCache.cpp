#include "engine/TensorCache.h"

#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <cstring>

// c10::Allocator changed in LibTorch 2.3: allocate() lost its const and copy_data() became pure.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define SEGNODE_ALLOCATE_CONST
#define SEGNODE_HAS_COPY_DATA 1
#else
#define SEGNODE_ALLOCATE_CONST const
#endif

namespace segnode::engine {
namespace {

constexpr size_t kMinCachedBytes = size_t(1) << 20;  // smaller blocks: the default allocator is fine
constexpr size_t kAlignment = 64;

class TensorCache final : public c10::Allocator {
 public:
  TensorCache(c10::Allocator* fallback, size_t cap) : fallback_(fallback), cap_(cap) {}

  c10::DataPtr allocate(size_t n) SEGNODE_ALLOCATE_CONST override {
    if (n < kMinCachedBytes) return fallback_->allocate(n);
    std::lock_guard<std::mutex> lock(mutex_);
    void* p = nullptr;
    // Best fit among cached blocks up to 25 % larger than asked: shapes that differ slightly
    // (odd crop sizes, concatenations) still reuse memory instead of faulting in new pages.
    auto fit = free_.lower_bound(n);
    while (fit != free_.end() && fit->second.empty() && fit->first <= n + n / 4) ++fit;
    if (fit != free_.end() && !fit->second.empty() && fit->first <= n + n / 4) {
      n = fit->first;
      p = fit->second.back();
      fit->second.pop_back();
      cachedBytes_ -= n;
      ++hits_;
    } else {
      // A miss must not grow the footprint beyond the largest the process has needed so far:
      // cached blocks of other sizes make room first.
      while (cachedBytes_ > 0 && liveBytes_ + cachedBytes_ + n > highWater_) evictLargestLocked();
      if (posix_memalign(&p, kAlignment, n) != 0) throw std::bad_alloc();
      ++misses_;
    }
    sizes_[p] = n;
    liveBytes_ += n;
    highWater_ = std::max(highWater_, liveBytes_ + cachedBytes_);
    return {p, p, &TensorCache::release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &TensorCache::release; }
#ifdef SEGNODE_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

  void put(void* p) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sizes_.find(p);
    if (it == sizes_.end()) {  // not ours: came from the fallback
      fallbackDelete(p);
      return;
    }
    size_t n = it->second;
    sizes_.erase(it);
    liveBytes_ -= n;
    free_[n].push_back(p);
    cachedBytes_ += n;
    trimLocked();
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [n, blocks] : free_)
      for (void* b : blocks) std::free(b);
    free_.clear();
    cachedBytes_ = 0;
    highWater_ = liveBytes_;
  }

  TensorCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return {hits_, misses_, cachedBytes_};
  }

  static void release(void* p);

 private:
  // Over budget: give back the largest blocks first (they cost the most to keep).
  void trimLocked() const {
    while (cachedBytes_ > cap_) evictLargestLocked();
  }

  void evictLargestLocked() const {
    for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
      if (it->second.empty()) continue;
      std::free(it->second.back());
      it->second.pop_back();
      cachedBytes_ -= it->first;
      return;
    }
  }

  void fallbackDelete(void* p) { fallback_->raw_deleter()(p); }

  c10::Allocator* fallback_;
  size_t cap_;
  mutable std::mutex mutex_;
  mutable std::map<size_t, std::vector<void*>> free_;  // by block size
  mutable std::unordered_map<void*, size_t> sizes_;
  mutable size_t cachedBytes_ = 0;
  mutable size_t liveBytes_ = 0;   // handed out and not yet freed
  mutable size_t highWater_ = 0;   // largest live + cached so far: misses evict to stay under it
  mutable int64_t hits_ = 0, misses_ = 0;
};

TensorCache* g_cache = nullptr;  // process-wide, like the allocator slot it fills

void TensorCache::release(void* p) {
  if (p) g_cache->put(p);
}

size_t defaultCap() {
  long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
  size_t physical = pages > 0 && pageSize > 0 ? size_t(pages) * size_t(pageSize) : size_t(8) << 30;
  return std::min(size_t(4) << 30, physical / 8);
}

}  // namespace

void installTensorCache(size_t capBytes) {
  static std::once_flag once;
  std::call_once(once, [&] {
    // Small allocations keep going to the default allocator, whose deleter frees them.
    g_cache = new TensorCache(c10::GetDefaultCPUAllocator(), capBytes ? capBytes : defaultCap());
    c10::SetCPUAllocator(g_cache, /*priority=*/10);
  });
}

void releaseTensorCache() {
  if (g_cache) g_cache->clear();
}

TensorCacheStats tensorCacheStats() { return g_cache ? g_cache->stats() : TensorCacheStats{}; }

}  // namespace segnode::engine
