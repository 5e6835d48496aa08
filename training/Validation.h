#pragma once
// Validation while training: Dice per class of a network on fixed held-out pairs (synthetic images
// of label maps no training step sees), one whole-volume forward pass per case on the training
// device. It gives the learning curves (validation Dice against iterations) at a cost of seconds;
// the numbers a release reports come from `segnode-distill evaluate` on the CPU (sliding window,
// the node's own preprocessing).
#include <string>
#include <vector>

#include "engine/Safetensors.h"
#include "engine/nn/PlainConvUNet.h"
#include "training/Synth.h"

namespace segnode::training {

struct ValidationResult {
  std::vector<double> dice;  // per class (index 0 unused); NaN where the class is in no reference
  double mean = 0;           // over the foreground classes present in the references
};

class Validator {
 public:
  // `cases`: whole normalised images [1, 1, z, y, x] and targets [1, z, y, x] (Synthesizer::whole).
  Validator(std::vector<SynthBatch> cases, std::string group);
  // With `weights` (e.g. the EMA), they are loaded into `net` for the pass and the net's own
  // restored after; without, the net runs as it is.
  ValidationResult run(engine::PlainConvUNet& net, const engine::TensorMap* weights = nullptr) const;
  const std::string& group() const { return group_; }

 private:
  std::vector<SynthBatch> cases_;
  std::string group_;
};

// Dice per class from predicted and reference class maps of the same shape (any device).
ValidationResult diceOf(const std::vector<std::pair<torch::Tensor, torch::Tensor>>& predictedAndReference,
                        int64_t numClasses);

}  // namespace segnode::training
