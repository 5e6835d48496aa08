#pragma once
// Is a result what the model's anatomy looks like? (issue 16) The bundle declares the ranges
// (BundleSpec::plausibility, written by `segnode-distill export` from its training label maps);
// this measures a label map against them: the labelled volume, the share of structures present,
// the left/right volume ratio, per-structure volumes, and the confidence of the network itself.
// A phantom, a CT sent to a brain model or a scan of another body part fails with a reason that
// names what was measured and what was expected.
#include <optional>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"
#include "engine/Confidence.h"
#include "engine/Volume.h"

namespace segnode::engine {

struct PlausibilityReport {
  bool checked = false;        // the bundle declares plausibility ranges
  bool plausible = true;       // every declared range holds
  bool lowConfidence = false;  // confidence below the bundle's min_confidence
  std::vector<std::string> reasons;  // one per failed range, e.g. "labelled volume 4 mL, expected 700-2000 mL"
  // The label-table indices of the structures outside their own volume range (CT organs); each
  // has its reason in `reasons` too.
  std::vector<size_t> structuresOutside;
  // What omitStructures() left out of the result, each with its reason, and their label-table
  // indices; the rest was found plausible.
  std::vector<std::string> omitted;
  std::vector<size_t> omittedStructures;
  double labelledMl = 0, structuresPresent = 0, leftRightRatio = 0, connectedShare = 0;
  Confidence confidence;
  // The failed ranges, "; "-separated ("" when plausible).
  std::string reasonText() const;
  // The omitted structures' reasons, "; "-separated ("" when none).
  std::string omittedText() const;
  // "plausible; confidence 0.93" / "implausible: <reasons>; confidence 0.41 (LOW)" /
  // "plausible without: <omitted>; confidence 0.88".
  std::string summary() const;
};

// mL per entry of `table` (index = class) in a label map whose values are the table's values.
std::vector<double> labelVolumesMl(const Volume& labels, const std::vector<LabelInfo>& table);
// Total left / total right volume over the "left X" / "right X" label pairs; 0 without pairs.
double leftRightRatio(const std::vector<double>& volumesMl, const std::vector<LabelInfo>& table);

// What the checks measure, from the volumes per label: total foreground volume, the share of
// foreground labels with at least minStructureMl, and leftRightRatio.
struct VolumeSummary {
  double labelledMl = 0, structuresPresent = 0, leftRightRatio = 0;
  int present = 0, foreground = 0;
};
VolumeSummary summariseVolumes(const std::vector<double>& volumesMl, const std::vector<LabelInfo>& table,
                               double minStructureMl);

// The share of the labelled voxels that lie in the largest 6-connected piece of their own label:
// an organ is one piece (about 0.95 for a brain or an abdomen segmented right), where noise, a
// phantom or another body part scatter a label in fragments (0.1-0.55; docs/models.md). 0 when
// nothing is labelled. One pass over the volume with a flood fill per piece.
double connectedShare(const Volume& labels);

// connectedShareBefore: the labels' connected share before post-processing removed pieces
// (SegmentStats::connectedShare), which is what tells a fragmented result; else measured here.
// lowestInput: the input image's lowest value (SegmentStats::lowestInput), for the bundle's
// lowest_input_at_most; not checked without it.
PlausibilityReport checkPlausibility(const BundleSpec& spec, const Volume& labels, const Confidence& confidence,
                                     std::optional<double> connectedShareBefore = std::nullopt,
                                     std::optional<double> lowestInput = std::nullopt);

// The structures a result may leave out instead of being rejected: those outside their own volume
// range when nothing else failed, and at most a quarter of the structures (at least one). An
// adrenal a student draws twice as thick as any training map's is that structure's error; a volume,
// share, left/right, fragment or "not a CT" failure, or many organs out of range at once, mean the
// input is not what the model is for, and nothing may be left out (empty).
std::vector<size_t> omittableStructures(const PlausibilityReport& check, const BundleSpec& spec);

// Sets the given structures (label-table indices) to background in `labels`.
void setToBackground(Volume& labels, const std::vector<size_t>& structures, const std::vector<LabelInfo>& table);

}  // namespace segnode::engine
