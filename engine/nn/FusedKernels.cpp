#include "engine/nn/FusedKernels.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

namespace segnode::engine::kernels {
namespace {

// ---- Fused instance norm + leaky ReLU on an NDHWC activation (one sample) ---------------------

// 16 floats in GCC's portable vector type: each target clone below lowers it to one AVX-512
// register, two AVX2 ones or four SSE ones. bf16 values are the top halves of float32s.
typedef float Vec16 __attribute__((vector_size(64)));
typedef uint32_t Vec16u __attribute__((vector_size(64)));
typedef uint16_t Vec16h __attribute__((vector_size(32)));

#define SEGNODE_INLINE inline __attribute__((always_inline))
SEGNODE_INLINE Vec16 load16(const float* p) {
  Vec16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
SEGNODE_INLINE Vec16 load16(const uint16_t* p) {
  Vec16h h;
  std::memcpy(&h, p, sizeof h);
  return (Vec16)(__builtin_convertvector(h, Vec16u) << 16);
}
SEGNODE_INLINE void store16(float* p, Vec16 v) { std::memcpy(p, &v, sizeof v); }
SEGNODE_INLINE void store16(uint16_t* p, Vec16 v) {  // round to nearest even, as oneDNN converts
  Vec16u u = (Vec16u)v;
  u += 0x7FFFu + ((u >> 16) & 1u);
  Vec16h h = __builtin_convertvector(u >> 16, Vec16h);
  std::memcpy(p, &h, sizeof h);
}
SEGNODE_INLINE float load1(float v) { return v; }
SEGNODE_INLINE float load1(uint16_t h) { return __builtin_bit_cast(float, uint32_t(h) << 16); }
SEGNODE_INLINE void store1(float& d, float v) { d = v; }
SEGNODE_INLINE void store1(uint16_t& d, float v) {
  uint32_t u = __builtin_bit_cast(uint32_t, v);
  d = uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// An NDHWC activation is a flat array in which channel c of voxel v sits at v * C + c. Read in
// blocks of L = lcm(C, 16) values, lane j of every block holds channel j % C, so the loops below
// run over whole 16-float vectors with per-lane parameters, whatever C is.
int64_t patternLength(int64_t C) { return C * 16 / std::gcd(C, int64_t(16)); }

template <class T>
SEGNODE_INLINE void blockSums(const T* x, int64_t blocks, int64_t L, const float* shift, float* sum, float* sq) {
  for (int64_t b = 0; b < blocks; ++b, x += L)
    for (int64_t j = 0; j < L; j += 16) {
      Vec16 d = load16(x + j) - load16(shift + j);
      store16(sum + j, load16(sum + j) + d);
      store16(sq + j, load16(sq + j) + d * d);
    }
}

template <class T>
SEGNODE_INLINE void blockApply(T* x, int64_t blocks, int64_t L, const float* a, const float* b) {
  for (int64_t n = 0; n < blocks; ++n, x += L)
    for (int64_t j = 0; j < L; j += 16) {
      Vec16 y = load16(x + j) * load16(a + j) + load16(b + j);
      store16(x + j, y > 0 ? y : 0.01f * y);  // LeakyReLU(0.01)
    }
}

// Memory-bound loops: one clone per vector width lets a generic x86-64 build use AVX-512 where
// the CPU has it.
#if defined(__x86_64__)
#define SEGNODE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SEGNODE_CLONES
#endif
SEGNODE_CLONES void sumsF32(const float* x, int64_t n, int64_t L, const float* s, float* sum, float* sq) {
  blockSums(x, n, L, s, sum, sq);
}
SEGNODE_CLONES void sumsBf16(const uint16_t* x, int64_t n, int64_t L, const float* s, float* sum, float* sq) {
  blockSums(x, n, L, s, sum, sq);
}
SEGNODE_CLONES void applyF32(float* x, int64_t n, int64_t L, const float* a, const float* b) { blockApply(x, n, L, a, b); }
SEGNODE_CLONES void applyBf16(uint16_t* x, int64_t n, int64_t L, const float* a, const float* b) {
  blockApply(x, n, L, a, b);
}
#undef SEGNODE_CLONES

void sums(const float* x, int64_t n, int64_t L, const float* s, float* sum, float* sq) { sumsF32(x, n, L, s, sum, sq); }
void sums(const uint16_t* x, int64_t n, int64_t L, const float* s, float* sum, float* sq) { sumsBf16(x, n, L, s, sum, sq); }
void apply(float* x, int64_t n, int64_t L, const float* a, const float* b) { applyF32(x, n, L, a, b); }
void apply(uint16_t* x, int64_t n, int64_t L, const float* a, const float* b) { applyBf16(x, n, L, a, b); }

// Per-lane parameters of a block from per-channel ones.
std::vector<float> lanes(const std::vector<float>& perChannel, int64_t L) {
  std::vector<float> out(static_cast<size_t>(L));
  for (int64_t j = 0; j < L; ++j) out[size_t(j)] = perChannel[size_t(j) % perChannel.size()];
  return out;
}

// x <- LeakyReLU(InstanceNorm(x) * gamma + beta), statistics over the `voxels` of each channel.
// Partial sums cover a fixed number of blocks, so results do not depend on the thread count; they
// are taken around a rough per-channel mean (a few hundred voxels), so that E[x^2] - E[x]^2 does
// not cancel when a channel's mean is large against its spread, and combined in double.
template <class T>
void normLeakyReluImpl(T* x, int64_t voxels, int64_t C, const float* gamma, const float* beta) {
  std::vector<float> shift(size_t(C), 0.0f);
  const int64_t samples = std::min<int64_t>(voxels, 256), every = voxels / samples;
  for (int64_t i = 0; i < samples; ++i)
    for (int64_t c = 0; c < C; ++c) shift[size_t(c)] += load1(x[i * every * C + c]) / float(samples);

  const int64_t L = patternLength(C), blocks = voxels * C / L, tail = voxels * C - blocks * L;
  const int64_t perChunk = std::max<int64_t>(1, 16384 / L), chunks = (blocks + perChunk - 1) / perChunk;
  const std::vector<float> shiftLanes = lanes(shift, L);
  std::vector<float> partial(size_t(2 * chunks * L), 0.0f);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b0 = k * perChunk, n = std::min(perChunk, blocks - b0);
      sums(x + b0 * L, n, L, shiftLanes.data(), &partial[size_t(2 * k * L)], &partial[size_t((2 * k + 1) * L)]);
    }
  });
  std::vector<double> s(size_t(C), 0.0), q(size_t(C), 0.0);
  for (int64_t k = 0; k < chunks; ++k)
    for (int64_t j = 0; j < L; ++j) {
      s[size_t(j % C)] += partial[size_t(2 * k * L + j)];
      q[size_t(j % C)] += partial[size_t((2 * k + 1) * L + j)];
    }
  for (int64_t i = blocks * L; i < blocks * L + tail; ++i) {  // voxels that fill no whole block
    double d = double(load1(x[i])) - shift[size_t(i % C)];
    s[size_t(i % C)] += d;
    q[size_t(i % C)] += d * d;
  }
  std::vector<float> a(static_cast<size_t>(C)), b(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double m = s[size_t(c)] / double(voxels), var = std::max(0.0, q[size_t(c)] / double(voxels) - m * m);
    const double scale = double(gamma[c]) / std::sqrt(var + 1e-5);
    a[size_t(c)] = float(scale);
    b[size_t(c)] = float(double(beta[c]) - (double(shift[size_t(c)]) + m) * scale);
  }
  const std::vector<float> aLanes = lanes(a, L), bLanes = lanes(b, L);
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      const int64_t b0 = k * perChunk, n = std::min(perChunk, blocks - b0);
      apply(x + b0 * L, n, L, aLanes.data(), bLanes.data());
    }
  });
  for (int64_t i = blocks * L; i < blocks * L + tail; ++i) {
    float y = load1(x[i]) * a[size_t(i % C)] + b[size_t(i % C)];
    store1(x[i], y > 0 ? y : 0.01f * y);
  }
}

// torch.cat([upsampled, skip], channels) written in one pass: `g` holds the upsampling's matrix
// product, one row per coarse voxel with the `K` kernel offsets' outputs side by side; each fine
// voxel takes its `up` channels from its coarse voxel's row, then the skip's channels.
template <class T>
void scatterConcatImpl(const T* g, const T* skip, T* cat, const std::array<int64_t, 3>& coarse,
                       const std::array<int64_t, 3>& stride, int64_t up, int64_t skipChannels) {
  const int64_t H = coarse[1], W = coarse[2], sz = stride[0], sy = stride[1], sx = stride[2];
  const int64_t Ho = H * sy, Wo = W * sx, C = up + skipChannels, K = sz * sy * sx;
  at::parallel_for(0, coarse[0] * sz * Ho, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t z = row / Ho, y = row % Ho;
      T* out = cat + row * Wo * C;
      const T* sk = skip + row * Wo * skipChannels;
      const T* gRow = g + ((z / sz) * H + y / sy) * W * K * up + ((z % sz) * sy + y % sy) * sx * up;
      for (int64_t x = 0; x < Wo; ++x, out += C, sk += skipChannels) {
        const T* src = gRow + (x / sx) * K * up + (x % sx) * up;
        for (int64_t c = 0; c < up; ++c) out[c] = src[c];
        for (int64_t c = 0; c < skipChannels; ++c) out[up + c] = sk[c];
      }
    }
  });
}

}  // namespace

template <class T>
void normLeakyRelu(T* x, int64_t voxels, int64_t channels, const float* gamma, const float* beta) {
  normLeakyReluImpl(x, voxels, channels, gamma, beta);
}

template <class T>
void scatterConcat(const T* product, const T* skip, T* cat, const std::array<int64_t, 3>& coarse,
                   const std::array<int64_t, 3>& stride, int64_t up, int64_t skipChannels) {
  scatterConcatImpl(product, skip, cat, coarse, stride, up, skipChannels);
}

template void normLeakyRelu<float>(float*, int64_t, int64_t, const float*, const float*);
template void normLeakyRelu<uint16_t>(uint16_t*, int64_t, int64_t, const float*, const float*);
template void scatterConcat<float>(const float*, const float*, float*, const std::array<int64_t, 3>&,
                                   const std::array<int64_t, 3>&, int64_t, int64_t);
template void scatterConcat<uint16_t>(const uint16_t*, const uint16_t*, uint16_t*, const std::array<int64_t, 3>&,
                                      const std::array<int64_t, 3>&, int64_t, int64_t);

}  // namespace segnode::engine::kernels
