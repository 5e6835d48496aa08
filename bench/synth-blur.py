#!/usr/bin/env python3
"""Times the synthesiser's slice-profile blur (training/Synth.cpp, blurAxis) on one region of a
brain map, as the GPU training runs it: conv3d with a 1-D kernel whose length changes with each
sample's slice thickness, under cudnn.benchmark (on in training), against a banded matrix product
along the axis. Prints ms a blur for each way and the largest difference between them.
  python3 bench/synth-blur.py [cuda|cpu]"""
import math, sys, time
import torch
import torch.nn.functional as F

dev = torch.device(sys.argv[1] if len(sys.argv) > 1 else ("cuda" if torch.cuda.is_available() else "cpu"))
region = (1, 1, 176, 216, 176)  # [1, 1, z, y, x]: a brain's foreground box plus its margin
sigmas = [0.4247 * r for r in (1.3, 1.7, 2.2, 2.9, 3.6, 4.4, 5.1, 6.3, 7.2, 8.0)]

def kernel(sigma):
    radius = math.ceil(3 * sigma)
    k = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, device=dev, dtype=torch.float) / sigma) ** 2)
    return k / k.sum(), radius

def conv(x, dim, sigma):
    k, radius = kernel(sigma)
    shape = [1, 1, 1, 1, 1]; shape[dim] = k.numel()
    pad = [0, 0, 0]; pad[dim - 2] = radius
    return F.conv3d(x, k.view(shape), padding=pad)

def banded(x, dim, sigma):
    k, radius = kernel(sigma)
    n = x.size(dim)
    i = torch.arange(n, device=dev)
    off = i.view(-1, 1) - i.view(1, -1) + radius  # m[j, i] = k[j - i + radius]: out_i = sum_j x_j m[j, i], as conv3d
    m = torch.where((off >= 0) & (off <= 2 * radius), k[off.clamp(0, 2 * radius)], torch.zeros((), device=dev))
    return torch.matmul(x.movedim(dim, -1), m).movedim(-1, dim)

def timed(f, reps):
    if dev.type == "cuda": torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps): f()
    if dev.type == "cuda": torch.cuda.synchronize()
    return (time.perf_counter() - t) / reps * 1000

x = torch.randn(region, device=dev)
print(f"device {dev}" + (f" ({torch.cuda.get_device_name()}, cuDNN {torch.backends.cudnn.version()})" if dev.type == "cuda" else ""))
worst = max((conv(x, d, s) - banded(x, d, s)).abs().max().item() for d in (2, 3, 4) for s in sigmas[::3])
print(f"largest |conv - banded|: {worst:.2e}")
for bench in ([True, False] if dev.type == "cuda" else [False]):
    torch.backends.cudnn.benchmark = bench
    first = timed(lambda: [conv(x, d, s) for d in (2, 3, 4) for s in sigmas], 1) / (3 * len(sigmas))
    cached = timed(lambda: [conv(x, d, s) for d in (2, 3, 4) for s in sigmas], 3) / (3 * len(sigmas))
    print(f"conv3d, cudnn.benchmark {bench}: {first:.1f} ms a blur the first time a kernel length is seen, {cached:.1f} ms after")
mm = timed(lambda: [banded(x, d, s) for d in (2, 3, 4) for s in sigmas], 3) / (3 * len(sigmas))
print(f"banded matrix product: {mm:.1f} ms a blur")
