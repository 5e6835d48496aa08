#pragma once
// PlainConvUNet inference that drives oneDNN directly (the CPU path the node uses by default).
//
// Why not TorchScript: LibTorch 1.13 runs this network as oneDNN convolutions in a blocked
// layout, converts every activation back to a plain tensor for instance norm and leaky ReLU and
// back again, pads 8-channel layers to 16, and runs the transposed convolutions on its slow
// reference path. Measured on the 1/4-width brain student (one 96x112x96 tile, 2 threads),
// those conversions, norms and upsamplings took over half the time. Here every activation stays
// channels-last (NDHWC) from the first convolution to the logits; convolutions, transposed
// convolutions and the concatenation are oneDNN primitives made once per tile shape; instance
// norm and leaky ReLU are one fused two-pass kernel; bf16 runs the same graph in bf16 where the
// CPU has the instructions. int8 quantises the input of every convolution but the first and the
// head (a oneDNN reorder, scale from the bundle's calibration), runs the convolution on 8-bit
// weights scaled per output channel into a float32 result, and keeps norms, upsampling and the
// concatenation in float32: the norms need float statistics, and every 8-bit tensor is then
// one convolution's input alone.
//
// The arithmetic is the network's own (same weights, float32 statistics), so outputs match the
// eager network to float rounding (tests/engine/test_network.cpp).
#include <memory>
#include <vector>

#include <torch/types.h>

#include "engine/BundleSpec.h"
#include "engine/Safetensors.h"

namespace segnode::engine {

class DnnlUNet {
 public:
  // weights: as the bundle stores them (PlainConvUNet's parameter names). Throws Error(BadBundle)
  // for a missing tensor. int8Absmax: the bundle's inference.int8_calibration (Int8 needs it).
  DnnlUNet(const ArchitectureSpec& spec, const TensorMap& weights, Precision precision,
           const std::vector<std::vector<double>>& int8Absmax = {});
  ~DnnlUNet();
  DnnlUNet(const DnnlUNet&) = delete;
  DnnlUNet& operator=(const DnnlUNet&) = delete;

  // [N, in_channels, z, y, x] float32 -> logits [N, classes, z, y, x] float32, laid out
  // channels-last (classes vary fastest). z, y, x must be divisible by the product of the strides.
  // Safe to call from several threads at once: each thread gets its own primitives and buffers
  // per input shape, made on its first call.
  torch::Tensor forward(const torch::Tensor& x) const;

  // Calibration for int8 (`segnode-distill calibrate`): runs x in float32 and returns, for each
  // convolution that int8 quantises (network order), each input channel's |input| at `percentile` (100: the largest).
  std::vector<std::vector<double>> calibrationAbsmax(const torch::Tensor& x, double percentile = 100) const;

  struct Impl;

 private:
  void checkInput(const torch::Tensor& x) const;
  std::unique_ptr<Impl> impl_;
};

}  // namespace segnode::engine
