#include "training/PrecisionGuard.h"

#include <cmath>

#include "common/Error.h"

namespace segnode::training {
namespace {

double number(const nlohmann::ordered_json& j, const std::string& what) {
  if (!j.is_number()) throw Error(ErrorCode::BadInput, "precision guard: the candidate metrics have no " + what);
  return j.get<double>();
}

double rounded(double x) { return std::round(x * 10000) / 10000; }

}  // namespace

PrecisionGuard precisionGuard(const nlohmann::ordered_json& reference, const nlohmann::ordered_json& candidate) {
  PrecisionGuard g;
  g.referencePrecision = reference.value("precision", "fp32");
  if (g.referencePrecision != "fp32")
    throw Error(ErrorCode::BadInput, "precision guard: the reference metrics are in " + g.referencePrecision + ", not fp32");
  const auto& refGroups = reference.value("mean_dice", nlohmann::ordered_json::object());
  if (!refGroups.is_object() || refGroups.empty()) throw Error(ErrorCode::BadInput, "precision guard: the reference has no mean_dice per group");
  const auto& candGroups = candidate.value("mean_dice", nlohmann::ordered_json::object());
  g.worstGroupDrop = g.worstStructureDrop = -1;
  for (const auto& [group, value] : refGroups.items()) {
    const double drop = value.get<double>() - number(candGroups.value(group, nlohmann::ordered_json()), "mean_dice." + group);
    if (drop > g.worstGroupDrop) g.worstGroupDrop = drop, g.worstGroup = group;
    const auto& refStructures = reference.value("dice", nlohmann::ordered_json::object()).value(group, nlohmann::ordered_json::object());
    const auto& candStructures = candidate.value("dice", nlohmann::ordered_json::object()).value(group, nlohmann::ordered_json::object());
    for (const auto& [structure, d] : refStructures.items()) {
      const double sd = d.get<double>() - number(candStructures.value(structure, nlohmann::ordered_json()), "dice." + group + "." + structure);
      if (sd > g.worstStructureDrop) g.worstStructureDrop = sd, g.worstStructure = group + ": " + structure;
    }
  }
  g.candidateMeanDice = candGroups;
  // A hair of slack for the 4-decimal rounding of both files.
  g.passed = g.worstGroupDrop <= PrecisionGuard::kGroupLimit + 1e-9 && g.worstStructureDrop <= PrecisionGuard::kStructureLimit + 1e-9;
  return g;
}

nlohmann::ordered_json PrecisionGuard::toJson() const {
  return {{"passed", passed},
          {"reference", referencePrecision},
          {"worst_group_drop", rounded(worstGroupDrop)},
          {"worst_group", worstGroup},
          {"worst_structure_drop", rounded(worstStructureDrop)},
          {"worst_structure", worstStructure},
          {"limits", {{"group", kGroupLimit}, {"structure", kStructureLimit}}},
          {"mean_dice", candidateMeanDice}};
}

}  // namespace segnode::training
