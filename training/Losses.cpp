#include "training/Losses.h"

#include <torch/torch.h>

namespace segnode::training {
namespace F = torch::nn::functional;
using torch::indexing::None;
using torch::indexing::Slice;

namespace {
// Losses run in float32 (bf16 logits under autocast are widened); double stays double so that
// finite-difference checks are exact enough.
torch::Tensor wide(const torch::Tensor& x) { return x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat); }
}  // namespace

torch::Tensor softDiceLoss(const torch::Tensor& logits, const torch::Tensor& target) {
  const int64_t classes = logits.size(1);
  auto p = torch::softmax(wide(logits), 1);
  auto onehot = F::one_hot(target, classes).permute({0, 4, 1, 2, 3}).to(p.scalar_type());
  std::vector<int64_t> dims{0, 2, 3, 4};
  auto inter = (p * onehot).sum(dims), denom = p.sum(dims) + onehot.sum(dims);
  auto dice = (2 * inter + 1e-5) / (denom + 1e-5).clamp_min(1e-8);
  return 1 - dice.slice(0, 1).mean();  // foreground classes only
}

torch::Tensor diceCeLoss(const torch::Tensor& logits, const torch::Tensor& target) {
  return softDiceLoss(logits, target) + F::cross_entropy(wide(logits), target);
}

std::vector<double> deepSupervisionWeights(size_t heads) {
  std::vector<double> w(heads);
  double sum = 0;
  for (size_t i = 0; i < heads; ++i) w[i] = (heads > 1 && i + 1 == heads) ? 0 : 1.0 / double(int64_t(1) << i);
  for (double x : w) sum += x;
  for (double& x : w) x /= sum;
  return w;
}

torch::Tensor deepSupervisionLoss(const std::vector<torch::Tensor>& heads, const torch::Tensor& target) {
  auto w = deepSupervisionWeights(heads.size());
  torch::Tensor total;
  for (size_t i = 0; i < heads.size(); ++i) {
    if (w[i] == 0) continue;
    torch::Tensor t = target;
    std::vector<torch::indexing::TensorIndex> idx{Slice()};
    for (int d = 0; d < 3; ++d) {
      int64_t step = target.size(d + 1) / heads[i].size(d + 2);
      idx.push_back(Slice(None, None, std::max<int64_t>(1, step)));
    }
    t = target.index(idx);
    auto l = diceCeLoss(heads[i], t) * w[i];
    total = total.defined() ? total + l : l;
  }
  return total;
}

torch::Tensor klDistillationLoss(const torch::Tensor& student, const torch::Tensor& teacher, double T) {
  auto logPs = torch::log_softmax(wide(student) / T, 1);
  auto logPt = torch::log_softmax(wide(teacher) / T, 1);
  auto kl = (logPt.exp() * (logPt - logPs)).sum(1);  // [B, z, y, x]
  return kl.mean() * (T * T);
}

torch::Tensor edgeMagnitude(const torch::Tensor& p, EdgeOperator op) {
  const int64_t C = p.size(1);
  auto o = p.options();
  // Separable 3D kernels: derivative [-1, 0, 1] along one axis, smoothing along the other two
  // ([1, 2, 1] Sobel, [1, 1, 1] Prewitt).
  auto diff = torch::tensor({-1.0, 0.0, 1.0}, o);
  auto smooth = op == EdgeOperator::Sobel ? torch::tensor({1.0, 2.0, 1.0}, o) : torch::tensor({1.0, 1.0, 1.0}, o);
  auto k3 = [&](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {  // z, y, x factors
    return (a.view({3, 1, 1}) * b.view({1, 3, 1}) * c.view({1, 1, 3})) / smooth.sum().pow(2);
  };
  auto kernels = torch::stack({k3(diff, smooth, smooth), k3(smooth, diff, smooth), k3(smooth, smooth, diff)});
  // Depthwise: every class channel convolved with the three kernels -> [B, 3C, ...].
  auto w = kernels.unsqueeze(1).repeat({C, 1, 1, 1, 1});
  auto pad = F::pad(p, F::PadFuncOptions({1, 1, 1, 1, 1, 1}).mode(torch::kReplicate));
  auto g = F::conv3d(pad, w, F::Conv3dFuncOptions().groups(C));
  auto sizes = p.sizes().vec();
  g = g.view({sizes[0], C, 3, sizes[2], sizes[3], sizes[4]});
  return (g.pow(2).sum(2) + 1e-12).sqrt();
}

torch::Tensor gradientDistillationLoss(const torch::Tensor& student, const torch::Tensor& teacher, EdgeOperator op,
                                       double edgeWeight) {
  auto es = edgeMagnitude(torch::softmax(wide(student), 1), op);
  torch::Tensor et;
  {
    torch::NoGradGuard ng;
    et = edgeMagnitude(torch::softmax(wide(teacher), 1), op);
  }
  auto peak = std::get<0>(et.flatten(1).max(1)).clamp_min(1e-6).view({-1, 1, 1, 1, 1});
  auto w = 1 + edgeWeight * et / peak;
  return (w * (es - et).pow(2)).mean();
}

}  // namespace segnode::training
