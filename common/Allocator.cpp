#include "common/Allocator.h"

#include <malloc.h>

namespace segnode {

void tuneAllocatorForLargeTensors(size_t trimBytes) {
  mallopt(M_MMAP_MAX, 0);                    // large blocks from the heap, reused across tiles
  mallopt(M_TRIM_THRESHOLD, int(trimBytes > size_t(1) << 30 ? size_t(1) << 30 : trimBytes));
}

}  // namespace segnode
