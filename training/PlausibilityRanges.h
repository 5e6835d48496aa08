#pragma once
// The ranges of a bundle's `plausibility:` section (engine/Plausibility.h, issue 16), derived by
// `segnode-distill export` from the label maps the model was trained on and from what the
// validation cases gave: every training map and every validation case lies inside them.
#include <array>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"

namespace segnode::training {

struct RangeOptions {
  double margin = 0.25;          // ranges widened by this share beyond the training maps' extremes
  double minStructureMl = 0.05;  // a structure counts as present from this volume
  double structuresTolerance = 0.25;  // structures_present: the training maps' least share minus this
  double connectedTolerance = 0.2;    // min_connected_share: the least connected map's share minus this
  // CT: lowest_input_at_most, halfway between air (-1000 HU) and fat (-100), so a field of view
  // cut inside the body still passes by its bowel gas or lung base (engine/BundleSpec.h).
  double ctLowestInputAtMost = -500;
};

// `maps`: label maps with the training data's values (each label's source_values). MR (a brain
// series holds the whole head): labelled volume and left/right ratio bounded on both sides. CT (a
// series may cover part of the abdomen): organ volumes bounded above only, the labelled volume
// below at a twentieth of the smallest training map's. `validation` (evaluate's metrics,
// validation_cases): min_confidence is set 0.05 below its lowest confidence, and the labelled
// volume, left/right ratio, structures-present and (CT) organ volume ranges widened to hold every
// validation case (a student's own bias, e.g. w8's left/right 0.69-0.76 against the maps' 0.9-1.1,
// or CT w2's adrenal glands of up to 21 mL against the maps' 7.5, is not a reason to reject the
// cases it was validated on).
struct ValidationExtremes {
  std::optional<double> lowestConfidence;
  std::optional<std::array<double, 2>> labelledVolumeMl;
  std::optional<std::array<double, 2>> leftRightRatio;
  std::optional<double> structuresPresent;  // the least share of structures present in a case
  std::optional<double> connectedShare;     // the least engine::connectedShare of a case
  // CT: the largest volume of each structure in a case, by name (a student that draws the adrenal
  // glands thicker than any training map still passes the cases it was validated on).
  std::map<std::string, double> largestStructureMl;
};
engine::PlausibilitySpec plausibilityFromLabelMaps(const engine::BundleSpec& spec, const std::vector<std::string>& maps,
                                                   const ValidationExtremes& validation, const RangeOptions& options = {});

}  // namespace segnode::training
