#pragma once
// A per-case confidence from the network's own averaged outputs, at no extra pass (issue 16):
// over the voxels it labels foreground, the mean probability of the chosen class and the share
// whose margin to the runner-up is small. A phantom, a CT sent to a brain model or noise gives
// low values where the validation cases give high ones (docs/models.md, "Plausibility").
#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace segnode::engine {

struct Confidence {
  double meanMaxProbability = 0;  // over foreground-labelled voxels; 0 when there are none
  double lowMarginFraction = 0;   // share of them with p1 - p2 < kLowMargin
  int64_t labelledVoxels = 0;     // counted voxels (every 2nd voxel along each axis)
  // Per output class (index = class, as the bundle's label table): the mean probability of the
  // class over the voxels it wins, 0 where it wins none; the SEG carries it per segment.
  std::vector<double> classMeanMaxProbability;
  static constexpr double kLowMargin = 0.2;
};

// Fed slab by slab with the sliding window's averaged logits [C, z, y, x] (WindowOptions).
// Every second voxel along each axis is counted (an eighth): the statistic is a mean, and this
// keeps its cost a small part of the window's (one exp per counted logit; measured in
// docs/models.md, "Plausibility").
class ConfidenceAccumulator {
 public:
  void add(const torch::Tensor& logits);
  Confidence result() const;

 private:
  int64_t lowMargin_ = 0;
  std::vector<double> classSum_;  // per class: summed probability and count of the voxels it wins
  std::vector<int64_t> classCount_;
};

}  // namespace segnode::engine
