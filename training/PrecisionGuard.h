#pragma once
// The Dice guard a precision other than fp32 must pass before the node may run a bundle in it
// (issue 14): against the fp32 evaluation of the same cases, no validation group's mean Dice may
// drop by more than 0.005 and no structure's (mean over a group's cases) by more than 0.02.
// Inputs are two `segnode-distill evaluate` metrics (mean_dice.<group>, dice.<group>.<structure>).
#include <nlohmann/json.hpp>
#include <string>

namespace segnode::training {

struct PrecisionGuard {
  static constexpr double kGroupLimit = 0.005, kStructureLimit = 0.02;
  bool passed = false;
  double worstGroupDrop = 0, worstStructureDrop = 0;
  std::string worstGroup, worstStructure;  // "group: structure"
  std::string referencePrecision;
  nlohmann::ordered_json candidateMeanDice;
  nlohmann::ordered_json toJson() const;
};

// Throws Error(BadInput) when the candidate lacks a group or structure the reference has.
PrecisionGuard precisionGuard(const nlohmann::ordered_json& reference, const nlohmann::ordered_json& candidate);

}  // namespace segnode::training
