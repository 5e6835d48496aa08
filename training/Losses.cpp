#include "training/Losses.h"

#include <torch/torch.h>

#include "common/Error.h"

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
  auto p = torch::softmax(wide(logits), 1);
  // One-hot straight into the softmax's type (F::one_hot makes an int64 tensor 8 bytes per class
  // and voxel first).
  auto onehot = torch::zeros_like(p).scatter_(1, target.unsqueeze(1), 1);
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

namespace {
torch::Tensor klPerVoxel(const torch::Tensor& student, const torch::Tensor& teacher, double T) {  // [B, z, y, x]
  auto logPs = torch::log_softmax(wide(student) / T, 1);
  auto logPt = torch::log_softmax(wide(teacher) / T, 1);
  return (logPt.exp() * (logPt - logPs)).sum(1);
}
}  // namespace

torch::Tensor klDistillationLoss(const torch::Tensor& student, const torch::Tensor& teacher, double T) {
  return klPerVoxel(student, teacher, T).mean() * (T * T);
}

torch::Tensor balancedKlDistillationLoss(const torch::Tensor& student, const torch::Tensor& teacher, double T) {
  torch::Tensor weights;
  {
    torch::NoGradGuard ng;
    auto cls = teacher.argmax(1);  // [B, z, y, x]
    // Counted by scatter_add, not bincount: CUDA's bincount reads the largest value back to the
    // host first, a wait for the device in every step.
    auto flat = cls.flatten();
    auto counts = torch::zeros({teacher.size(1)}, flat.options()).scatter_add_(0, flat, torch::ones_like(flat)).to(torch::kDouble);
    auto inverse = torch::where(counts > 0, 1.0 / counts.clamp_min(1), torch::zeros_like(counts));
    weights = inverse.index({cls});
    weights = (weights / weights.mean()).to(wide(student).scalar_type());
  }
  return (weights * klPerVoxel(student, teacher, T)).mean() * (T * T);
}

torch::Tensor featureDistillationLoss(const std::vector<torch::Tensor>& student, const std::vector<torch::Tensor>& teacher,
                                      const std::vector<torch::Tensor>& channels) {
  if (student.size() != teacher.size() || student.size() != channels.size() || student.empty())
    throw Error(ErrorCode::InvalidArgument,
                "feature distillation: one teacher feature map and one channel set per student stage");
  torch::Tensor total;
  for (size_t i = 0; i < student.size(); ++i) {
    auto t = wide(teacher[i]).index_select(1, channels[i].to(teacher[i].device()));
    auto l = (wide(student[i]) - t.detach()).pow(2).mean();
    total = total.defined() ? total + l : l;
  }
  return total / double(student.size());
}

namespace {
// Separable 3D kernels as sums of shifted slices (no convolution: PyTorch's depthwise 3D
// convolution on CUDA is a slow generic kernel, and its backward slower still). `x` is padded by
// one voxel on every side; each call consumes the padding of `dim`.
torch::Tensor derivative(const torch::Tensor& x, int64_t dim) {  // [-1, 0, 1]
  const int64_t n = x.size(dim);
  return x.narrow(dim, 2, n - 2) - x.narrow(dim, 0, n - 2);
}
torch::Tensor smoothing(const torch::Tensor& x, int64_t dim, EdgeOperator op) {  // [1, 2, 1] or [1, 1, 1]
  const int64_t n = x.size(dim);
  auto middle = x.narrow(dim, 1, n - 2);
  return x.narrow(dim, 0, n - 2) + x.narrow(dim, 2, n - 2) + (op == EdgeOperator::Sobel ? 2 * middle : middle);
}
}  // namespace

torch::Tensor edgeMagnitude(const torch::Tensor& p, EdgeOperator op) {
  // Derivative along one axis, smoothing along the other two, normalised by the smoothing
  // kernel's sum squared; dims 2, 3, 4 are z, y, x.
  auto padded = F::pad(p, F::PadFuncOptions({1, 1, 1, 1, 1, 1}).mode(torch::kReplicate));
  auto sx = smoothing(padded, 4, op);
  auto gz = derivative(smoothing(sx, 3, op), 2);
  auto gy = smoothing(derivative(sx, 3), 2, op);
  auto gx = smoothing(smoothing(derivative(padded, 4), 3, op), 2, op);
  const double norm = op == EdgeOperator::Sobel ? 16.0 : 9.0;
  return ((gx.pow(2) + gy.pow(2) + gz.pow(2)) / (norm * norm) + 1e-12).sqrt();
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
