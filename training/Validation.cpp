#include "training/Validation.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace segnode::training {
namespace F = torch::nn::functional;

Validator::Validator(std::vector<SynthBatch> cases, std::string group) : cases_(std::move(cases)), group_(std::move(group)) {}

namespace {

// Pads [1, 1, z, y, x] at the end of each axis to a multiple of the network's total stride there.
torch::Tensor padToStride(const torch::Tensor& image, const engine::ArchitectureSpec& arch) {
  std::array<int64_t, 3> factor{1, 1, 1};  // x, y, z
  for (const auto& s : arch.strides)
    for (int a = 0; a < 3; ++a) factor[size_t(a)] *= s[size_t(a)];
  std::vector<int64_t> pad;  // x first (last dim), then y, z
  for (int a = 0; a < 3; ++a) {
    int64_t n = image.size(4 - a), f = factor[size_t(a)];
    pad.insert(pad.end(), {0, (f - n % f) % f});
  }
  return F::pad(image, F::PadFuncOptions(pad));
}

}  // namespace

ValidationResult Validator::run(engine::PlainConvUNet& net, const engine::TensorMap* weights) const {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> own;
  if (weights)
    for (auto& p : net->named_parameters()) {
      own.push_back(p.value().detach().clone());
      p.value().copy_(weights->at(p.key()));
    }
  std::vector<std::pair<torch::Tensor, torch::Tensor>> pairs;
  for (const auto& c : cases_) {
    auto logits = net->forward(padToStride(c.image, net->spec()));
    auto pred = logits.slice(2, 0, c.image.size(2)).slice(3, 0, c.image.size(3)).slice(4, 0, c.image.size(4)).argmax(1);
    pairs.push_back({pred, c.target});
  }
  size_t i = 0;
  if (weights)
    for (auto& p : net->named_parameters()) p.value().copy_(own[i++]);
  return diceOf(pairs, net->spec().numClasses);
}

ValidationResult diceOf(const std::vector<std::pair<torch::Tensor, torch::Tensor>>& pairs, int64_t C) {
  torch::Tensor confusion;  // [reference, predicted] voxel counts over all cases
  for (const auto& [pred, ref] : pairs) {
    auto bins = torch::bincount((ref.flatten() * C + pred.flatten()).to(torch::kLong), {}, C * C).view({C, C});
    confusion = confusion.defined() ? confusion + bins : bins;
  }
  confusion = confusion.to(torch::kCPU).to(torch::kDouble);
  ValidationResult r;
  r.dice.assign(size_t(C), std::numeric_limits<double>::quiet_NaN());
  double sum = 0;
  int n = 0;
  for (int64_t c = 1; c < C; ++c) {
    double inter = confusion[c][c].item<double>(), ref = confusion[c].sum().item<double>(),
           pred = confusion.select(1, c).sum().item<double>();
    if (ref == 0) continue;  // not in any reference: no Dice to average
    r.dice[size_t(c)] = 2 * inter / (ref + pred);
    sum += r.dice[size_t(c)];
    ++n;
  }
  r.mean = n ? sum / n : std::numeric_limits<double>::quiet_NaN();
  return r;
}

}  // namespace segnode::training
