#pragma once
// `segnode-distill train` (the teacher) and `distill` (a family of students from it). Both draw
// their batches from the Synthesizer on the training device, run nnU-Net's recipe (SGD Nesterov
// 0.99 with poly learning rate, or AdamW; Dice + CE with deep supervision; He initialisation),
// save a checkpoint that `--resume` continues, print progress and write the loss curves as CSV.
//
// The schedule can be bounded by iterations, by wall time, or both: the poly decay follows
// whichever runs out first, so a fixed GPU budget is always spent on one complete schedule.
#include <filesystem>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"
#include "engine/nn/PlainConvUNet.h"
#include "training/Losses.h"
#include "training/Synth.h"

namespace segnode::training {

struct ScheduleOptions {
  int64_t iterations = 1000;   // upper bound
  double timeBudgetSeconds = 0;  // 0: no time bound
  std::string optimizer = "sgd";  // sgd | adamw
  double learningRate = 0.01;     // sgd; adamw uses 1e-3 unless set
  double weightDecay = 3e-5;
  bool bf16 = true;               // bf16 autocast on CUDA (float32 on CPU)
  int logEvery = 50;
  int checkpointEvery = 500;
  uint64_t seed = 1;
  bool resume = false;
};

struct DistillWeights {
  double supervised = 1, kd = 1, gradient = 10;
  double temperature = 2;
  EdgeOperator edges = EdgeOperator::Sobel;
  double edgeWeight = 4;
  double warmupFraction = 0.1;  // KD terms ramp linearly from 0 over this part of the schedule
};

struct TrainResult {
  int64_t iterations = 0;
  double seconds = 0;
  double finalLoss = 0;
};

// He initialisation as nnU-Net's InitWeights_He(1e-2).
void initialiseHe(engine::PlainConvUNet& net);

// Trains `net` in place. `workDir` receives checkpoint.pt, optimizer.pt, progress.txt, curves.csv.
TrainResult trainTeacher(engine::PlainConvUNet& net, const Synthesizer& data, const std::array<int64_t, 3>& patch,
                         int batch, const ScheduleOptions& schedule, const std::filesystem::path& workDir,
                         torch::Device device);

// Trains every student together on the same batches (one teacher forward per batch).
TrainResult distillStudents(engine::PlainConvUNet& teacher, std::vector<engine::PlainConvUNet>& students,
                            const Synthesizer& data, const std::array<int64_t, 3>& patch, int batch,
                            const ScheduleOptions& schedule, const DistillWeights& weights,
                            const std::filesystem::path& workDir, torch::Device device);

// Writes a bundle (bundle.yaml + weights.safetensors + sha256) for a trained network.
engine::BundleSpec writeTrainedBundle(engine::BundleSpec spec, engine::PlainConvUNet& net,
                                      const std::filesystem::path& directory, torch::ScalarType storeAs);
// Loads a bundle's weights into an eager network (for distillation from a teacher bundle).
engine::PlainConvUNet loadEager(const engine::BundleSpec& spec, torch::Device device);

}  // namespace segnode::training
