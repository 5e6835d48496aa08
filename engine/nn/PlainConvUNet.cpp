#include "engine/nn/PlainConvUNet.h"

namespace segnode::engine {

torch::ExpandingArray<3> torchOrder(const std::array<int, 3>& xyz) {
  return torch::ExpandingArray<3>({xyz[2], xyz[1], xyz[0]});
}

ConvNormActImpl::ConvNormActImpl(int in, int out, const std::array<int, 3>& kernel, const std::array<int, 3>& stride,
                                 bool bias) {
  std::array<int, 3> pad{kernel[0] / 2, kernel[1] / 2, kernel[2] / 2};
  conv = register_module("conv", torch::nn::Conv3d(torch::nn::Conv3dOptions(in, out, torchOrder(kernel))
                                                       .stride(torchOrder(stride))
                                                       .padding(torchOrder(pad))
                                                       .bias(bias)));
  norm = register_module("norm", torch::nn::InstanceNorm3d(torch::nn::InstanceNorm3dOptions(out).eps(1e-5).affine(true)));
}

torch::Tensor ConvNormActImpl::forward(const torch::Tensor& x) {
  return torch::leaky_relu(norm(conv(x)), 0.01);
}

PlainConvUNetImpl::PlainConvUNetImpl(const ArchitectureSpec& spec) : spec_(spec) {
  spec_.validate("architecture");
  if (spec_.stages() < 2) throw std::invalid_argument("PlainConvUNet needs at least two stages");
  const int n = spec_.stages();
  for (int s = 0; s < n; ++s) {
    torch::nn::Sequential stage;
    for (int c = 0; c < spec_.convsPerStage[size_t(s)]; ++c) {
      int in = c > 0 ? spec_.features[size_t(s)] : (s == 0 ? spec_.inChannels : spec_.features[size_t(s - 1)]);
      stage->push_back(ConvNormAct(in, spec_.features[size_t(s)], spec_.kernelSizes[size_t(s)],
                                   c == 0 ? spec_.strides[size_t(s)] : std::array<int, 3>{1, 1, 1}, spec_.convBias));
    }
    encoder->push_back(stage);
  }
  for (int s = n - 2; s >= 0; --s) {
    int f = spec_.features[size_t(s)];
    auto stride = torchOrder(spec_.strides[size_t(s + 1)]);
    upsample->push_back(torch::nn::ConvTranspose3d(
        torch::nn::ConvTranspose3dOptions(spec_.features[size_t(s + 1)], f, stride).stride(stride).bias(true)));
    torch::nn::Sequential stage;
    for (int c = 0; c < spec_.convsPerStageDecoder[size_t(s)]; ++c)
      stage->push_back(ConvNormAct(c == 0 ? 2 * f : f, f, spec_.kernelSizes[size_t(s)], std::array<int, 3>{1, 1, 1},
                                   spec_.convBias));
    decoder->push_back(stage);
    heads->push_back(torch::nn::Conv3d(torch::nn::Conv3dOptions(f, spec_.numClasses, 1).bias(true)));
  }
  register_module("encoder", encoder);
  register_module("upsample", upsample);
  register_module("decoder", decoder);
  register_module("heads", heads);
}

std::vector<torch::Tensor> PlainConvUNetImpl::run(const torch::Tensor& input, bool allHeads,
                                                  std::vector<torch::Tensor>* features) {
  std::vector<torch::Tensor> skips;
  torch::Tensor x = input;
  for (const auto& stage : *encoder) {
    x = stage->as<torch::nn::Sequential>()->forward(x);
    skips.push_back(x);
  }
  std::vector<torch::Tensor> outputs;
  const size_t steps = decoder->size();
  for (size_t d = 0; d < steps; ++d) {
    x = upsample[d]->as<torch::nn::ConvTranspose3d>()->forward(x);
    x = torch::cat({x, skips[skips.size() - 2 - d]}, 1);
    x = decoder[d]->as<torch::nn::Sequential>()->forward(x);
    if (features) features->push_back(x);
    if (allHeads || d + 1 == steps) outputs.push_back(heads[d]->as<torch::nn::Conv3d>()->forward(x));
  }
  std::reverse(outputs.begin(), outputs.end());
  if (features) std::reverse(features->begin(), features->end());
  return outputs;
}

std::vector<torch::Tensor> PlainConvUNetImpl::forwardAll(const torch::Tensor& x) { return run(x, true); }

PlainConvUNetImpl::Outputs PlainConvUNetImpl::forwardWithFeatures(const torch::Tensor& x) {
  Outputs o;
  o.heads = run(x, true, &o.features);
  return o;
}

// The full-resolution head only: the other heads cost nothing at inference.
torch::Tensor PlainConvUNetImpl::forward(const torch::Tensor& x) { return run(x, false).front(); }

int64_t PlainConvUNetImpl::parameterCount() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

}  // namespace segnode::engine
