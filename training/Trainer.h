#pragma once
// `segnode-distill train` (the teacher) and `distill` (a family of students from it). Both draw
// their batches from the Synthesizer on the training device, run nnU-Net's recipe (SGD Nesterov
// 0.99; Dice + CE with deep supervision; He initialisation), keep an EMA of the weights (what a
// bundle ships), print progress, write the loss curves and validation Dice as CSV, and save a
// training state that `--resume` continues exactly (training/TrainState.h).
//
// One run has one schedule: linear warm-up, then poly decay to zero at the planned total number
// of iterations. A run spans many calls (GPU runs of minutes): a call stops on its own iteration
// count or wall-time limit, which never touch the learning rate, and the next call resumes at the
// same global step with the same momentum, EMA and data stream. Every step draws a new batch.
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"
#include "engine/Safetensors.h"
#include "engine/nn/PlainConvUNet.h"
#include "training/Losses.h"
#include "training/PhaseClock.h"
#include "training/Synth.h"
#include "training/Validation.h"

namespace segnode::training {

struct ScheduleOptions {
  int64_t iterations = 1000;     // planned total of the run: the learning-rate schedule spans it
  int64_t warmupIterations = 0;  // linear warm-up from lr / warmup, inside the total
  int64_t stopAfter = 0;         // this call: stop after this many iterations (0: no limit)
  double timeBudgetSeconds = 0;  // this call: stop once the program has run this many seconds,
                                 // its set-up included (0: no limit)
  std::string optimizer = "sgd";  // sgd | adamw (adamw runs are not resumable)
  double learningRate = 0.01;     // sgd; adamw uses 1e-3 unless set
  double weightDecay = 3e-5;
  bool bf16 = true;               // bf16 autocast of the forward passes on CUDA (losses in float32)
  double emaDecay = 0.999;        // 0: the EMA is the weights themselves
  int logEvery = 50;
  bool readEveryStep = false;     // read the logged losses after every step, so the host waits for
                                  // the device each time (the loop before 2026-12-02; the probe's
                                  // side-by-side comparison)
  PhaseClock::Seconds* stepPhases = nullptr;  // the probe: seconds of each phase of every step
                                              // (synthesis, teacher, forward, each loss, backward,
                                              // optimiser, EMA), the device waited for after each
  int checkpointEvery = 1000;
  int validateEvery = 0;          // iterations between validations (0: at the end of a call only)
  uint64_t seed = 1;
  bool resume = false;
  bool extend = false;  // with resume: raise the saved run's planned total to `iterations` (recorded)
  std::map<std::string, std::string> recipe;  // what the batches are drawn from (RunState::recipe)
};

// The learning rate of global step `step` (0-based).
double learningRateAt(const ScheduleOptions& s, int64_t step);

// What one student of a family is trained with (the family shares batches and teacher outputs).
struct StudentRecipe {
  std::string name;  // state file stem and the prefix of its CSV columns
  double supervised = 1, kd = 1, gradient = 10;
  bool balancedKd = true;  // KL weighted by inverse teacher-class frequency (else a plain voxel mean)
  double feature = 0;      // weight of feature distillation against the teacher's decoder channels
  std::vector<torch::Tensor> channels;  // with feature > 0: Prune.h decoderChannels for this student
};

struct DistillSettings {
  double temperature = 2;
  EdgeOperator edges = EdgeOperator::Sobel;
  double edgeWeight = 4;
  double kdRampFraction = 0;  // KD terms ramp linearly from 0 over this part of the planned total
};

struct TrainResult {
  int64_t iterations = 0;  // global step reached
  double seconds = 0;      // training seconds, all calls
  int calls = 0;
  std::vector<std::string> extensions;          // of the planned total (--extend)
  std::vector<double> finalLoss;                // per network, smoothed
  std::vector<engine::TensorMap> ema;           // per network: the weights to ship
  std::vector<ValidationResult> validation;     // per network, last validation (empty without)
};

// He initialisation as nnU-Net's InitWeights_He(1e-2).
void initialiseHe(engine::PlainConvUNet& net);

// Trains `net` in place. `workDir` receives the state (state.yaml, teacher.state.safetensors),
// curves.csv and validation.csv.
TrainResult trainTeacher(engine::PlainConvUNet& net, const Synthesizer& data, const std::array<int64_t, 3>& patch,
                         int batch, const ScheduleOptions& schedule, const std::filesystem::path& workDir,
                         torch::Device device, const Validator* validator = nullptr);

// Trains every student together on the same batches (one teacher forward per batch).
TrainResult distillStudents(engine::PlainConvUNet& teacher, std::vector<engine::PlainConvUNet>& students,
                            const std::vector<StudentRecipe>& recipes, const Synthesizer& data,
                            const std::array<int64_t, 3>& patch, int batch, const ScheduleOptions& schedule,
                            const DistillSettings& settings, const std::filesystem::path& workDir, torch::Device device,
                            const Validator* validator = nullptr);

// torch::nn::utils::clip_grad_norm_'s arithmetic (the 2-norm of the gradients' 2-norms; the
// coefficient max / (norm + 1e-6), at most 1) without the .item() it ends with: that read makes
// the host wait for the whole backward pass, so the next step could not be queued while it runs.
void clipGradNorm(const std::vector<torch::Tensor>& parameters, double maxNorm);

// Seconds per iteration of the two shared parts of a distillation step at `batch`: synthesising
// the batch and the teacher's forward pass (the rest of a step is the students'). For the batch probe.
// With several synthesis threads, `serialSynthesis` is the same batches made on one, side by side.
// `synthesisStages`: one batch made on one thread, the device waited for after each stage of each
// sample: seconds per stage, summed over the batch (where synthesis time goes).
struct SharedStepCost {
  double synthesis = 0, teacher = 0, serialSynthesis = 0;
  Synthesizer::StageSeconds synthesisStages;
};
SharedStepCost measureSharedStepCost(engine::PlainConvUNet& teacher, const Synthesizer& data,
                                     const std::array<int64_t, 3>& patch, int batch, const ScheduleOptions& s,
                                     torch::Device device);

// Writes a bundle (bundle.yaml + weights.safetensors + sha256) for a trained network.
engine::BundleSpec writeTrainedBundle(engine::BundleSpec spec, const engine::TensorMap& weights,
                                      const std::filesystem::path& directory, torch::ScalarType storeAs);
engine::BundleSpec writeTrainedBundle(engine::BundleSpec spec, engine::PlainConvUNet& net,
                                      const std::filesystem::path& directory, torch::ScalarType storeAs);
// Loads a bundle's weights into an eager network (for distillation from a teacher bundle).
engine::PlainConvUNet loadEager(const engine::BundleSpec& spec, torch::Device device);

}  // namespace segnode::training
