#pragma once
// nnU-Net's PlainConvUNet in LibTorch's module style (options = ArchitectureSpec, Impl +
// TORCH_MODULE). Per stage: n x [conv -> InstanceNorm(eps 1e-5, affine) -> LeakyReLU(0.01)], the
// first conv of a stage strided; transposed-conv upsampling, skip concatenation, 1x1x1 heads.
//
// Parameter names (the safetensors keys, shared with ScriptedUNet and the Python reference):
//   encoder.<stage>.<conv>.conv.{weight,bias}, encoder.<stage>.<conv>.norm.{weight,bias}
//   upsample.<d>.{weight,bias}, decoder.<d>.<conv>.{conv,norm}.{weight,bias}, heads.<d>.{weight,bias}
// where decoder step d = 0 is the deepest and the last head gives the full-resolution output.
#include <torch/torch.h>

#include "engine/BundleSpec.h"

namespace segnode::engine {

// Spec triples are (x, y, z); tensors are [N, C, z, y, x].
torch::ExpandingArray<3> torchOrder(const std::array<int, 3>& xyz);

class ConvNormActImpl : public torch::nn::Module {
 public:
  ConvNormActImpl(int in, int out, const std::array<int, 3>& kernel, const std::array<int, 3>& stride, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv3d conv{nullptr};
  torch::nn::InstanceNorm3d norm{nullptr};
};
TORCH_MODULE(ConvNormAct);

class PlainConvUNetImpl : public torch::nn::Module {
 public:
  explicit PlainConvUNetImpl(const ArchitectureSpec& spec);
  torch::Tensor forward(const torch::Tensor& x);  // full-resolution logits
  // Logits of every decoder stage, full resolution first (deep supervision in training).
  std::vector<torch::Tensor> forwardAll(const torch::Tensor& x);
  // forwardAll's logits, and what each decoder stage passes to its head (full resolution first):
  // the feature maps a pruned student is distilled against (training/Prune.h).
  struct Outputs {
    std::vector<torch::Tensor> heads, features;
  };
  Outputs forwardWithFeatures(const torch::Tensor& x);
  const ArchitectureSpec& spec() const { return spec_; }
  int64_t parameterCount() const;

 private:
  std::vector<torch::Tensor> run(const torch::Tensor& x, bool allHeads, std::vector<torch::Tensor>* features = nullptr);
  ArchitectureSpec spec_;
  torch::nn::ModuleList encoder, upsample, decoder, heads;
};
TORCH_MODULE(PlainConvUNet);

}  // namespace segnode::engine
