#pragma once
// What a training run needs to continue exactly where it stopped, on another machine and with
// another LibTorch (a run spans many GPU calls): per network its weights, its SGD momentum and its
// EMA weights, one safetensors file each (readable from Python, independent of the LibTorch that
// wrote it); and for the run the global step, the data seed and the planned schedule (state.yaml).
// A resumed run draws the same batches and applies the same learning rates as one that never
// stopped.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "engine/Safetensors.h"
#include "engine/nn/PlainConvUNet.h"

namespace segnode::training {

// Exponential moving average of a network's parameters (the weights a bundle ships). The decay of
// update t (0-based global step) is min(decay, (1 + t) / (10 + t)): early in a run, when the weights
// still move fast, the average must follow them (measured: with a fixed 0.999 the EMA of a w4
// student at step 1,828 scored Dice 0.05 where its weights scored 0.25).
class Ema {
 public:
  Ema(engine::PlainConvUNet& net, double decay);
  void update(engine::PlainConvUNet& net, int64_t step);  // ema = d * ema + (1 - d) * weights
  static double decayAt(double decay, int64_t step);
  const engine::TensorMap& weights() const { return shadow_; }
  engine::TensorMap& weights() { return shadow_; }
  double decay() const { return decay_; }

 private:
  engine::TensorMap shadow_;
  double decay_;
};

// The run's identity: a resume with another plan is refused (the schedule would not be the same).
struct RunState {
  int64_t step = 0;            // iterations done
  double seconds = 0;          // training seconds spent, all calls together
  uint64_t seed = 1;           // data seed; batch i uses batchSeed(seed, i)
  int64_t plannedIterations = 0;
  int64_t warmupIterations = 0;
  double learningRate = 0;
  int batch = 0;
  std::array<int64_t, 3> patch{};
  std::vector<std::string> networks;  // file stems, in order
  int calls = 0;                      // how many runs (GPU calls) this state has been through
  // Deliberate extensions of the planned total (--extend), e.g. "at step 1828: 7500 -> 15000".
  std::vector<std::string> extensions;
  // What the batches and their targets are drawn from, by content, so that a resumed run draws
  // what it started with: the label maps, images, generation table and body context (sha256 of
  // the files), the synthesis options, and a distillation's teacher (its weights' sha256). Filled
  // by the command (training/cmd_train.cpp, recipeOf). A state written before it was recorded has
  // none and takes the resuming command's. Files are compared by their bytes (the staging scripts
  // write them byte for byte the same each time); the same data written differently is refused
  // too, and deleting that entry from state.yaml, deliberately, records the new file's.
  std::map<std::string, std::string> recipe;
};

// The data seed of global step `step`: a different, well-mixed seed for every step (splitmix64).
uint64_t batchSeed(uint64_t seed, int64_t step);

// An optimizer's per-parameter state in and out of a tensor map: "momentum.<param>" for SGD,
// "exp_avg.<param>", "exp_avg_sq.<param>" and "step.<param>" for AdamW. Parameters without state
// (no step taken yet) have no entries. Other optimizers: InvalidArgument.
engine::TensorMap optimizerStateOf(engine::PlainConvUNet& net, torch::optim::Optimizer& opt);
void restoreOptimizerState(engine::PlainConvUNet& net, torch::optim::Optimizer& opt, const engine::TensorMap& state);

// dir/<name>.state.safetensors: "weights.*", "ema.*" and the optimizer's entries, all float32.
// Written to a temporary file and renamed, so a killed run leaves the previous state whole.
void saveNetworkState(const std::filesystem::path& dir, const std::string& name, engine::PlainConvUNet& net,
                      torch::optim::Optimizer& opt, const Ema& ema);
void loadNetworkState(const std::filesystem::path& dir, const std::string& name, engine::PlainConvUNet& net,
                      torch::optim::Optimizer& opt, Ema& ema);

void writeRunState(const std::filesystem::path& dir, const RunState& s);
// Throws NotFound when dir/state.yaml is missing, BadInput naming the key when it is malformed.
RunState readRunState(const std::filesystem::path& dir);
// Refuses (InvalidArgument, naming what differs) to continue `saved` with the plan `wanted`; the
// wanted networks may be a subset of the saved ones, and a recipe entry the saved run lacks is
// taken from `wanted`.
void checkSameRun(const RunState& saved, const RunState& wanted);
// Raises saved's planned total to wanted's and records it; refuses to lower it or to extend a run
// past its end (its learning rate has already reached zero).
void extendRun(RunState& saved, const RunState& wanted);

}  // namespace segnode::training
