#pragma once
// The whole offline pipeline for one volume: preprocess -> sliding window -> back to the input grid
// -> label values from the bundle's table. Used by `segnode segment`, `segnode bench` and the
// daemon's workers alike.
#include <optional>

#include "engine/Confidence.h"
#include "engine/Model.h"
#include "engine/Plausibility.h"
#include "engine/Predictor.h"
#include "engine/Volume.h"

namespace segnode::engine {

struct SegmentOptions {
  std::optional<double> tileStep;  // default: the bundle's inference.tile_step
  std::optional<bool> mirror;      // default: mirroring on iff the bundle lists mirror_axes
  bool postprocess = true;         // false: the network's labels as they are (evaluate --postprocessing none)
  ProgressFn progress;
};

struct SegmentStats {
  double preprocessSeconds = 0, inferenceSeconds = 0, postprocessSeconds = 0;
  int64_t tiles = 0;
  Size3 networkSize{};
  Confidence confidence;  // of this result, from the window's own outputs (Confidence.h)
  // Post-processing (BundleSpec::postprocessing): voxels it set to background, and the labels'
  // connected share before it did (Components.h); unset when the bundle declares none.
  int64_t removedVoxels = 0;
  std::optional<double> connectedShare;
  // The input's lowest value, measured only for a bundle that checks it (Plausibility.h: a CT
  // holds air).
  std::optional<double> lowestInput;
};

// The result against the bundle's plausibility ranges, with what segment() measured on the way
// (the confidence, the connected share before post-processing, the input's lowest value): the
// one check the node, `segnode segment` and `segnode-distill evaluate` make.
PlausibilityReport checkPlausibility(const BundleSpec& spec, const Volume& labels, const SegmentStats& stats);
// Where `check` failed only on structures that may be left out (omittableStructures), sets them to
// background in `labels` and checks again: the new report names them in `omitted`. Else, or where
// the rest fails that second check (too few structures left), `check` (a result to reject).
PlausibilityReport omitStructures(const BundleSpec& spec, Volume& labels, const SegmentStats& stats,
                                  const PlausibilityReport& check);

// The sliding window the bundle asks for, with the caller's overrides (segment, and the tiles
// `segnode-distill calibrate` observes).
WindowOptions windowOptions(const BundleSpec& spec, const SegmentOptions& options = {});

// Labels on the input's grid (same geometry object), values from the bundle's label table,
// uint8 when every value fits, else int16.
Volume segment(const SegmentationModel& model, const Volume& input, const SegmentOptions& options = {},
               SegmentStats* stats = nullptr);

}  // namespace segnode::engine
