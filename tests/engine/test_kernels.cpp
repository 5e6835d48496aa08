// The oneDNN backend's own kernels against LibTorch's reference operations.
// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

#include "engine/nn/FusedKernels.h"

using namespace segnode::engine;

namespace {

// [1, C, z, y, x] <-> channels-last [z, y, x, C]; always a copy (for one channel `contiguous()`
// would hand back the input itself, and the kernels work in place).
torch::Tensor toNdhwc(const torch::Tensor& x) { return x[0].permute({1, 2, 3, 0}).clone(torch::MemoryFormat::Contiguous); }
torch::Tensor fromNdhwc(const torch::Tensor& x) { return x.permute({3, 0, 1, 2}).unsqueeze(0); }

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& gamma, const torch::Tensor& beta) {
  return torch::leaky_relu(torch::instance_norm(x, gamma, beta, {}, {}, true, 0.1, 1e-5, false), 0.01);
}

// bf16 as the kernel stores it: the upper 16 bits of a float32, rounded to nearest even.
torch::Tensor bf16Bits(const torch::Tensor& f) {
  return f.to(torch::kBFloat16).view(torch::kShort);
}
torch::Tensor fromBf16Bits(const torch::Tensor& bits) { return bits.view(torch::kBFloat16).to(torch::kFloat); }

}  // namespace

// Channel counts that are and are not multiples of 16 (lane patterns of 16, 80, 528 values),
// voxel counts that leave a tail, and a large mean (raw MR) that a naive E[x^2] - E[x]^2 loses.
TEST_CASE("fused instance norm + leaky ReLU equals LibTorch's, float32", "[kernels]") {
  torch::manual_seed(7);
  for (int64_t C : {1, 5, 8, 16, 33}) {
    for (auto shape : {std::vector<int64_t>{7, 9, 11}, std::vector<int64_t>{16, 24, 20}}) {
      auto x = torch::randn({1, C, shape[0], shape[1], shape[2]}) * 40 + 500;
      auto gamma = torch::rand({C}) + 0.5, beta = torch::randn({C});
      auto mine = toNdhwc(x);
      kernels::normLeakyRelu(mine.data_ptr<float>(), mine.numel() / C, C, gamma.data_ptr<float>(), beta.data_ptr<float>());
      INFO("C = " << C << ", voxels = " << shape[0] * shape[1] * shape[2]);
      CHECK(torch::allclose(fromNdhwc(mine), reference(x, gamma, beta), 1e-4, 1e-4));
    }
  }
}

TEST_CASE("fused instance norm + leaky ReLU in bf16 stays within bf16 rounding", "[kernels][bf16]") {
  torch::manual_seed(8);
  const int64_t C = 12;
  auto x = torch::randn({1, C, 10, 12, 14}) * 3 + 1;
  auto gamma = torch::rand({C}) + 0.5, beta = torch::randn({C});
  auto bits = bf16Bits(toNdhwc(x));
  auto expected = reference(fromNdhwc(fromBf16Bits(bits)), gamma, beta);  // from the values the kernel sees
  kernels::normLeakyRelu(reinterpret_cast<uint16_t*>(bits.data_ptr<int16_t>()), bits.numel() / C, C,
                         gamma.data_ptr<float>(), beta.data_ptr<float>());
  auto got = fromNdhwc(fromBf16Bits(bits));
  // bf16 keeps 8 significant bits: half a unit in the last place is 2^-9 of the value.
  CHECK(((got - expected).abs() <= expected.abs() * (1.0 / 256) + 1e-3).all().item<bool>());
}

TEST_CASE("the norm's statistics do not depend on the thread count", "[kernels]") {
  torch::manual_seed(9);
  const int64_t C = 8;
  auto x = toNdhwc(torch::randn({1, C, 32, 32, 32}) * 10 + 100);
  auto gamma = torch::ones({C}), beta = torch::zeros({C});
  auto one = x.clone(), two = x.clone();
  int saved = at::get_num_threads();
  at::set_num_threads(1);
  kernels::normLeakyRelu(one.data_ptr<float>(), one.numel() / C, C, gamma.data_ptr<float>(), beta.data_ptr<float>());
  at::set_num_threads(2);
  kernels::normLeakyRelu(two.data_ptr<float>(), two.numel() / C, C, gamma.data_ptr<float>(), beta.data_ptr<float>());
  at::set_num_threads(saved);
  CHECK(torch::equal(one, two));
}

// The transposed convolution as a matrix product, scattered into the concatenation, against
// conv_transpose3d + cat; an anisotropic stride catches an axis mix-up.
TEST_CASE("upsampling by matrix product + scatter equals conv_transpose3d + cat", "[kernels]") {
  torch::manual_seed(10);
  for (auto stride : {std::array<int64_t, 3>{2, 2, 2}, std::array<int64_t, 3>{1, 2, 2}}) {
    const int64_t in = 6, up = 5, skipC = 3;
    const std::array<int64_t, 3> coarse{3, 4, 5};
    auto x = torch::randn({1, in, coarse[0], coarse[1], coarse[2]});
    auto w = torch::randn({in, up, stride[0], stride[1], stride[2]});  // torch's [in, out, kz, ky, kx]
    auto bias = torch::randn({up});
    auto upsampled = torch::conv_transpose3d(x, w, bias, {stride[0], stride[1], stride[2]});
    auto skip = torch::randn({1, skipC, upsampled.size(2), upsampled.size(3), upsampled.size(4)});
    auto expected = torch::cat({upsampled, skip}, 1);

    const int64_t K = stride[0] * stride[1] * stride[2];
    auto matrix = w.permute({0, 2, 3, 4, 1}).reshape({in, K * up});  // [in, (kz, ky, kx, out)]
    auto product = (toNdhwc(x).view({-1, in}).matmul(matrix) + bias.repeat({K})).contiguous();
    auto skipL = toNdhwc(skip);
    auto cat = torch::empty({upsampled.size(2), upsampled.size(3), upsampled.size(4), up + skipC});
    kernels::scatterConcat(product.data_ptr<float>(), skipL.data_ptr<float>(), cat.data_ptr<float>(), coarse, stride, up,
                           skipC);
    INFO("stride " << stride[0] << "," << stride[1] << "," << stride[2]);
    CHECK(torch::allclose(fromNdhwc(cat), expected, 1e-5, 1e-5));
  }
}
