#include "engine/Confidence.h"

#include <torch/torch.h>

namespace segnode::engine {

void ConfidenceAccumulator::add(const torch::Tensor& logits) {
  if (logits.size(0) < 2) return;
  auto l = logits.slice(1, 0, logits.size(1), 2).slice(2, 0, logits.size(2), 2).slice(3, 0, logits.size(3), 2).to(torch::kFloat);
  auto [top, index] = l.topk(2, 0);                      // [2, z, y, x]
  auto sum = (l - top[0]).exp().sum(0);                  // softmax denominator / exp(l1)
  auto p1 = sum.reciprocal(), p2 = (top[1] - top[0]).exp() / sum;
  lowMargin_ += ((p1 - p2 < Confidence::kLowMargin) & (index[0] != 0)).sum().item<int64_t>();
  // The winners' probabilities summed by the class they chose (the foreground totals are these
  // summed over the classes from 1).
  const int64_t classes = l.size(0);
  auto winner = index[0].flatten();
  auto sums = winner.bincount(p1.flatten().to(torch::kDouble), classes).contiguous();
  auto counts = winner.bincount({}, classes).contiguous();
  classSum_.resize(size_t(classes)), classCount_.resize(size_t(classes));
  for (int64_t c = 0; c < classes; ++c) {
    classSum_[size_t(c)] += sums.data_ptr<double>()[c];
    classCount_[size_t(c)] += counts.data_ptr<int64_t>()[c];
  }
}

Confidence ConfidenceAccumulator::result() const {
  Confidence c;
  double sumMax = 0;
  for (size_t k = 1; k < classSum_.size(); ++k) sumMax += classSum_[k], c.labelledVoxels += classCount_[k];
  if (c.labelledVoxels > 0) {
    c.meanMaxProbability = sumMax / double(c.labelledVoxels);
    c.lowMarginFraction = double(lowMargin_) / double(c.labelledVoxels);
  }
  for (size_t k = 0; k < classSum_.size(); ++k)
    c.classMeanMaxProbability.push_back(classCount_[k] ? classSum_[k] / double(classCount_[k]) : 0);
  return c;
}

}  // namespace segnode::engine
