#include "training/PlausibilityRanges.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/Error.h"
#include "engine/Nifti.h"
#include "engine/Plausibility.h"
#include "training/Synth.h"

namespace segnode::training {
namespace {

// A training map as the bundle's output would be: class indices, then the bundle's label values.
engine::Volume asBundleLabels(const std::string& path, const engine::BundleSpec& spec, const std::vector<int>& lut) {
  engine::Volume v = engine::readNifti(path);
  std::vector<int64_t> valueOf(lut.size());
  for (size_t i = 0; i < lut.size(); ++i) valueOf[i] = spec.labels[size_t(lut[i])].value;
  auto values = torch::tensor(valueOf);
  v.data = values.index({v.data.to(torch::kFloat).round().to(torch::kLong).clamp(0, int64_t(lut.size()) - 1)});
  return v;
}

// `r` widened to hold `cases` (the validation cases' extremes), where there are any.
engine::PlausibilitySpec::Range holding(engine::PlausibilitySpec::Range r, const std::optional<std::array<double, 2>>& cases) {
  if (cases) r = {std::min(r[0], (*cases)[0]), std::max(r[1], (*cases)[1])};
  return r;
}

// Ranges widened to hold what a model finds in its validation cases would call that model's own
// failures plausible when it misses most structures (a CT network stopped before it had learnt
// more than the liver: 1 of 13); below half of the training maps' floor, export refuses instead.
void refuseMissingStructures(double validationShare, double trainedFloor, double trainingLeast) {
  if (validationShare >= trainedFloor / 2) return;
  const auto pct = [](double x) { return std::to_string(int(std::lround(100 * x))) + " %"; };
  throw Error(ErrorCode::BadBundle, "a validation case has only " + pct(validationShare) +
                                        " of the structures present (every training map has " + pct(trainingLeast) +
                                        "): ranges that held it would pass a failed segmentation; train the model further, "
                                        "or export it without --plausibility-labels");
}

struct Extremes {
  double lo = INFINITY, hi = 0;
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
};

}  // namespace

engine::PlausibilitySpec plausibilityFromLabelMaps(const engine::BundleSpec& spec, const std::vector<std::string>& maps,
                                                   const ValidationExtremes& validation, const RangeOptions& o) {
  if (maps.empty()) throw Error(ErrorCode::InvalidArgument, "plausibility ranges need the training label maps");
  const auto lut = targetLookup(spec.labels);
  const bool ct = spec.modality == engine::Modality::CT;
  Extremes labelled, ratio, present;
  std::vector<Extremes> perLabel(spec.labels.size());
  double connected = 1;  // the least connected training map
  for (const auto& path : maps) {
    const auto labels = asBundleLabels(path, spec, lut);
    connected = std::min(connected, engine::connectedShare(labels));
    const auto volumes = engine::labelVolumesMl(labels, spec.labels);
    const auto v = engine::summariseVolumes(volumes, spec.labels, o.minStructureMl);
    labelled.add(v.labelledMl);
    present.add(v.structuresPresent);
    if (v.leftRightRatio > 0) ratio.add(v.leftRightRatio);
    for (size_t i = 1; i < volumes.size(); ++i) perLabel[i].add(volumes[i]);
  }
  engine::PlausibilitySpec p;
  p.declared = true;
  const double m = o.margin;
  // No validation case may fall outside a range.
  p.labelledVolumeMl = holding({ct ? labelled.lo / 20 : labelled.lo * (1 - m), labelled.hi * (1 + m)}, validation.labelledVolumeMl);
  p.structuresPresent = std::max(0.0, present.lo - o.structuresTolerance);
  if (const auto& v = validation.structuresPresent) {
    refuseMissingStructures(*v, p.structuresPresent, present.lo);
    p.structuresPresent = std::min(p.structuresPresent, *v);
  }
  p.minStructureMl = o.minStructureMl;
  if (ratio.hi > 0 && !ct) p.leftRightRatio = holding({ratio.lo / (1 + m), ratio.hi * (1 + m)}, validation.leftRightRatio);
  if (ct)
    for (size_t i = 1; i < spec.labels.size(); ++i) {
      if (perLabel[i].hi <= 0) continue;
      double hi = perLabel[i].hi * (1 + m);
      // 0.5 % above the case: bundle.yaml writes 4 significant digits, which must not cut below it.
      // Said aloud: the model draws this organ larger than any training map has it.
      if (auto c = validation.largestStructureMl.find(spec.labels[i].name);
          c != validation.largestStructureMl.end() && c->second * 1.005 > hi) {
        std::fprintf(stderr, "plausibility: %s up to %.4g mL to hold a validation case (the training maps' largest: %.4g mL)\n",
                     spec.labels[i].name.c_str(), c->second * 1.005, perLabel[i].hi);
        hi = c->second * 1.005;
      }
      p.structureVolumeMl.emplace_back(spec.labels[i].name, engine::PlausibilitySpec::Range{0, hi});
    }
  if (ct) p.lowestInputAtMost = o.ctLowestInputAtMost;
  p.minConnectedShare = std::max(0.0, std::floor(100 * (connected - o.connectedTolerance)) / 100);
  if (const auto& v = validation.connectedShare) p.minConnectedShare = std::min(p.minConnectedShare, std::floor(100 * *v) / 100);
  if (const auto& c = validation.lowestConfidence) p.minConfidence = std::max(0.0, std::floor(100 * (*c - 0.05)) / 100);
  p.source = std::to_string(maps.size()) + (maps.size() == 1 ? " training label map" : " training label maps") +
             " (ranges widened by " + std::to_string(int(100 * m)) +
             " %" + (ct ? "; CT: organ volumes bounded above only, a series may cover part of the abdomen, and the input must hold air" : "") + ")" +
             (validation.lowestConfidence ? " and the validation cases (every range holds them; min_confidence 0.05 below the lowest)" : "");
  return p;
}

}  // namespace segnode::training
