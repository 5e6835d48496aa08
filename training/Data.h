#pragma once
// What train, distill and synth share: the data options on the command line, turned into a
// Synthesizer on the training device.
#include <memory>
#include <optional>

#include <torch/types.h>

#include "engine/BundleSpec.h"
#include "training/Synth.h"
#include "training/Validation.h"

namespace segnode::distill {

// The data options of synth, train and distill (declared for the command line in cmd_plan.cpp).
struct DataOptions {
  std::vector<std::string> labels, images, valLabels;
  std::string table;
  std::string device;  // cpu | cuda; empty: cuda when available
  double priorProbability = 0.5;
  std::optional<double> realProbability;  // default: 0.5 with images, else 0
  // CT tables only: the contrast phases training draws (default: all the table has) and the most
  // tissue blobs in the unlabelled body (0: one Gaussian, the ablation's plain arm).
  std::vector<std::string> phases;
  int bodyBlobs = 10;
  // CT: fully labelled maps (training/ct/totalseg-context.py) whose body context fills the hull.
  std::vector<std::string> contextMaps;
  // Threads that synthesise a batch's samples at once (Synthesizer::setThreads); the batches are
  // the same for any number.
  int synthThreads = 1;
};

torch::Device deviceFrom(const DataOptions& o);
std::string isoNow();
// The label maps (and images) with the bundle (or template) that fixes label table and preprocessing.
std::unique_ptr<training::Synthesizer> makeSynthesizer(const DataOptions& o, const engine::BundleSpec& spec,
                                                       torch::Device device, bool validation = false);
// valLabels: held-out label maps made into whole synthetic T1 pairs at the bundle spacing, with
// the seeds of `segnode-distill synth --seed 2000` (what bench/models.sh evaluates as synth-t1).
// Null without them.
std::unique_ptr<training::Validator> makeValidator(const DataOptions& o, const engine::BundleSpec& spec,
                                                   torch::Device device);

}  // namespace segnode::distill
