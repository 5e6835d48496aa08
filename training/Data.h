#pragma once
// What train, distill and synth share: the data options on the command line, turned into a
// Synthesizer on the training device.
#include <memory>

#include <torch/types.h>

#include "common/Args.h"
#include "engine/BundleSpec.h"
#include "training/Synth.h"
#include "training/Validation.h"

namespace segnode::distill {

// Options every data-using command accepts.
extern const std::set<std::string> kDataOptions;

torch::Device deviceFrom(const cli::Args& args);
std::string isoNow();
// --labels A,B,... [--images A,B,...] [--table TSV] [--prior-probability P] [--real-probability P]
// with the bundle (or template) that fixes label table and preprocessing.
std::unique_ptr<training::Synthesizer> makeSynthesizer(const cli::Args& args, const engine::BundleSpec& spec,
                                                       torch::Device device, bool validation = false,
                                                       const std::string& labelsOption = "--labels");
// --val-labels A,B,...: held-out label maps made into whole synthetic T1 pairs at the bundle
// spacing, with the seeds of `segnode-distill synth --seed 2000` (what bench/models.sh
// evaluates as synth-t1). Null without the option.
std::unique_ptr<training::Validator> makeValidator(const cli::Args& args, const engine::BundleSpec& spec,
                                                   torch::Device device);

}  // namespace segnode::distill
