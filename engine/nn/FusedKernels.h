#pragma once
// The two steps of the oneDNN backend (DnnlUNet) that oneDNN has no primitive for, on one
// sample's channels-last (NDHWC) activation, in float32 or bf16 (a uint16_t holding the upper
// half of a float32):
//   normLeakyRelu  x <- LeakyReLU_0.01(InstanceNorm(x) * gamma + beta), in place, eps 1e-5;
//                  statistics independent of the thread count
//   scatterConcat  torch.cat([upsampled, skip], channels), where the upsampling (a transposed
//                  convolution with kernel = stride) was computed as one matrix product
// Free functions with no model behind them; tests/engine/test_kernels.cpp checks them against
// LibTorch's own instance_norm, leaky_relu, conv_transpose3d and cat.
#include <array>
#include <cstdint>

namespace segnode::engine::kernels {

template <class T>  // float or uint16_t (bf16)
void normLeakyRelu(T* x, int64_t voxels, int64_t channels, const float* gamma, const float* beta);

// product: [coarse voxels, K * up] (K = stride volume; per coarse voxel the outputs of the K
// kernel offsets (z, y, x order) side by side, output channel fastest); skip: [fine voxels,
// skipChannels]; cat: [fine voxels, up + skipChannels]. coarse and stride in (z, y, x).
template <class T>
void scatterConcat(const T* product, const T* skip, T* cat, const std::array<int64_t, 3>& coarse,
                   const std::array<int64_t, 3>& stride, int64_t up, int64_t skipChannels);

}  // namespace segnode::engine::kernels
