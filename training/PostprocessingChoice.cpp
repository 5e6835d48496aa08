#include "training/PostprocessingChoice.h"

#include <cmath>

#include "common/Error.h"

namespace segnode::training {

PostprocessingChoice choosePostprocessing(const engine::BundleSpec& spec, const nlohmann::ordered_json& with,
                                          const nlohmann::ordered_json& without) {
  if (with.value("postprocessing", "bundle") != "bundle" || without.value("postprocessing", "bundle") != "none")
    throw Error(ErrorCode::BadInput, "post-processing check: want --metrics from `evaluate` as the node runs the bundle and "
                                     "--postprocessing-check from `evaluate --postprocessing none` on the same cases");
  const auto empty = nlohmann::ordered_json::object();
  const auto& a = with.value("dice", empty);
  const auto& b = without.value("dice", empty);
  PostprocessingChoice c;
  for (int value : spec.postprocessing.largestComponent) {
    std::string name;
    for (const auto& l : spec.labels)
      if (l.value == value) name = l.name;
    double sum = 0;
    int groups = 0;
    for (const auto& [group, structures] : a.items()) {
      const auto& other = b.value(group, empty);
      if (!structures.contains(name) || !other.contains(name)) continue;
      sum += structures[name].get<double>() - other[name].get<double>();
      ++groups;
    }
    // In no group (no case has it): kept, the anatomy decides.
    const double gain = groups ? sum / groups : 0;
    c.gain[name] = std::round(gain * 10000) / 10000;
    if (gain >= -PostprocessingChoice::kTolerance) c.kept.push_back(value);
    else c.dropped.push_back(name);
  }
  return c;
}

nlohmann::ordered_json PostprocessingChoice::toJson() const {
  return {{"rule", "keep a structure's largest piece where that does not lower its mean Dice over the validation groups"},
          {"tolerance", kTolerance},
          {"dice_gain", gain},
          {"dropped", dropped}};
}

}  // namespace segnode::training
