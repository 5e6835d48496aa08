#pragma once
// Which organs keep only their largest piece (engine::BundleSpec::postprocessing), chosen on the
// validation cases as nnU-Net chooses its post-processing: the template lists the structures that
// are one piece in anatomy; export keeps a listed structure only where removing its other pieces
// did not lower its Dice, on average over the validation groups that have it (a network that
// splits a true organ in pieces, as an undertrained one splits the pancreas, loses the pieces).
// Inputs are two `segnode-distill evaluate` metrics of the same cases, with the bundle's
// post-processing and with --postprocessing none (dice.<group>.<structure>).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"

namespace segnode::training {

struct PostprocessingChoice {
  static constexpr double kTolerance = 0.001;  // the 4-decimal rounding of both files, with room
  std::vector<int> kept;                       // label values, the template's order
  std::vector<std::string> dropped;            // structure names
  nlohmann::ordered_json gain;                 // structure -> mean over groups of with - without
  nlohmann::ordered_json toJson() const;
};

// Throws Error(BadInput) when `with` was not measured with post-processing or `without` was.
PostprocessingChoice choosePostprocessing(const engine::BundleSpec& spec, const nlohmann::ordered_json& with,
                                          const nlohmann::ordered_json& without);

}  // namespace segnode::training
