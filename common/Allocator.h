#pragma once
// Allocator tuning for processes that run 3D networks.
//
// Why: every tile allocates activations of 30-300 MB. glibc serves each from a fresh mmap and
// returns it on free, so the kernel zeroes and faults in gigabytes of pages per volume. Measured
// on the 1/4-width brain student (12 tiles of 128^3, 2 threads): 21.0 s/volume with the default,
// 12.5 s with mmap off and a high trim threshold, i.e. 40 % of the time was page faulting (sys time
// 17 s -> 3 s). Memory is still returned to the OS between jobs once more than `trimBytes` is free.
#include <cstddef>

namespace segnode {

void tuneAllocatorForLargeTensors(size_t trimBytes = size_t(1) << 30);

}  // namespace segnode
