#include "engine/Plausibility.h"

#include "engine/Components.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

namespace segnode::engine {
namespace {

std::string ml(double v) {
  char b[32];
  std::snprintf(b, sizeof b, v >= 10 ? "%.0f" : "%.3g", v);
  return b;
}

std::string outside(const std::string& what, double value, const PlausibilitySpec::Range& r, const std::string& unit) {
  return what + " " + ml(value) + unit + ", expected " + ml(r[0]) + "-" + ml(r[1]) + unit;
}

bool within(double v, const PlausibilitySpec::Range& r) { return r[1] <= 0 || (v >= r[0] && v <= r[1]); }

}  // namespace

std::vector<double> labelVolumesMl(const Volume& labels, const std::vector<LabelInfo>& table) {
  int maxValue = 0;
  for (const auto& l : table) maxValue = std::max(maxValue, l.value);
  // One pass over the values as stored, values outside [0, max] counted at its ends: an int64
  // copy of a 512 x 512 x 600 CT's labels (and its clamped copy) were 2.5 GB, more than the rest
  // of the inference (bench/memory.sh).
  std::vector<int64_t> counts(size_t(maxValue) + 1, 0);
  const auto values = storedLabelValues(labels.data);
  withLabelPointer(values, [&](const auto* v) {
    for (int64_t i = 0, n = values.numel(); i < n; ++i) ++counts[size_t(std::clamp(int(v[i]), 0, maxValue))];
  });
  const auto& s = labels.geometry.spacing;
  const double voxelMl = s[0] * s[1] * s[2] / 1000;
  std::vector<double> out;
  for (const auto& l : table) out.push_back(double(counts[size_t(l.value)]) * voxelMl);
  return out;
}

double leftRightRatio(const std::vector<double>& volumesMl, const std::vector<LabelInfo>& table) {
  double left = 0, right = 0;
  for (size_t i = 0; i < table.size(); ++i) {
    if (table[i].name.rfind("left ", 0) != 0) continue;
    const std::string partner = "right " + table[i].name.substr(5);
    for (size_t j = 0; j < table.size(); ++j)
      if (table[j].name == partner) left += volumesMl[i], right += volumesMl[j];
  }
  return right > 0 ? left / right : 0;
}

VolumeSummary summariseVolumes(const std::vector<double>& volumesMl, const std::vector<LabelInfo>& table,
                               double minStructureMl) {
  VolumeSummary v;
  for (size_t i = 1; i < volumesMl.size(); ++i) {
    v.labelledMl += volumesMl[i];
    ++v.foreground;
    if (volumesMl[i] >= std::max(minStructureMl, 1e-9)) ++v.present;
  }
  v.structuresPresent = v.foreground ? double(v.present) / v.foreground : 0;
  v.leftRightRatio = leftRightRatio(volumesMl, table);
  return v;
}

double connectedShare(const Volume& labels) { return summarisePieces(labels).connectedShare(); }

PlausibilityReport checkPlausibility(const BundleSpec& spec, const Volume& labels, const Confidence& confidence,
                                     std::optional<double> connectedShareBefore, std::optional<double> lowestInput) {
  PlausibilityReport r;
  r.confidence = confidence;
  const PlausibilitySpec& p = spec.plausibility;
  r.checked = p.declared;
  const auto volumes = labelVolumesMl(labels, spec.labels);
  const VolumeSummary v = summariseVolumes(volumes, spec.labels, p.minStructureMl);
  const int present = v.present, foreground = v.foreground;
  r.labelledMl = v.labelledMl, r.structuresPresent = v.structuresPresent, r.leftRightRatio = v.leftRightRatio;
  r.connectedShare = connectedShareBefore ? *connectedShareBefore : connectedShare(labels);
  if (!p.declared) return r;
  if (p.lowestInputAtMost && lowestInput && *lowestInput > *p.lowestInputAtMost) {
    char b[128];
    std::snprintf(b, sizeof b, "not a CT in Hounsfield units: lowest value %.0f, expected at most %.0f (air)", *lowestInput,
                  *p.lowestInputAtMost);
    r.reasons.push_back(b);
  }
  if (!within(r.labelledMl, p.labelledVolumeMl))
    r.reasons.push_back(outside("labelled volume", r.labelledMl, p.labelledVolumeMl, " mL"));
  if (r.structuresPresent < p.structuresPresent)
    r.reasons.push_back(std::to_string(present) + " of " + std::to_string(foreground) + " structures present, expected at least " +
                        std::to_string(int(std::ceil(p.structuresPresent * foreground - 1e-9))));
  if (r.leftRightRatio > 0 && !within(r.leftRightRatio, p.leftRightRatio))
    r.reasons.push_back(outside("left/right volume ratio", r.leftRightRatio, p.leftRightRatio, ""));
  if (r.connectedShare < p.minConnectedShare) {
    char b[160];
    std::snprintf(b, sizeof b, "fragmented: %.0f %% of the labelled voxels in their structure's largest piece, expected at least %.0f %%",
                  100 * r.connectedShare, 100 * p.minConnectedShare);
    r.reasons.push_back(b);
  }
  for (const auto& [name, range] : p.structureVolumeMl)
    for (size_t i = 0; i < spec.labels.size(); ++i)
      if (spec.labels[i].name == name && !within(volumes[i], range)) {
        r.reasons.push_back(outside(name, volumes[i], range, " mL"));
        r.structuresOutside.push_back(i);
      }
  r.plausible = r.reasons.empty();
  r.lowConfidence = p.minConfidence > 0 && confidence.meanMaxProbability < p.minConfidence;
  return r;
}

namespace {
std::string joined(const std::vector<std::string>& parts) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? "; " : "") + parts[i];
  return s;
}
}  // namespace

std::string PlausibilityReport::reasonText() const { return joined(reasons); }
std::string PlausibilityReport::omittedText() const { return joined(omitted); }

std::string PlausibilityReport::summary() const {
  std::string s = !plausible ? "implausible: " + reasonText() : omitted.empty() ? "plausible" : "plausible without: " + omittedText();
  char c[96];
  std::snprintf(c, sizeof c, "; confidence %.2f%s", confidence.meanMaxProbability, lowConfidence ? " (LOW)" : "");
  return s + c;
}

std::vector<size_t> omittableStructures(const PlausibilityReport& check, const BundleSpec& spec) {
  const size_t structures = spec.labels.empty() ? 0 : spec.labels.size() - 1;  // 0 is background
  const size_t most = std::max<size_t>(1, structures / 4);
  const bool onlyStructures = !check.plausible && check.reasons.size() == check.structuresOutside.size();
  if (!onlyStructures || check.structuresOutside.size() > most) return {};
  return check.structuresOutside;
}

void setToBackground(Volume& labels, const std::vector<size_t>& structures, const std::vector<LabelInfo>& table) {
  c10::InferenceMode inferenceMode;  // segment()'s labels are inference tensors: changed in place only in this mode
  for (size_t i : structures) labels.data.masked_fill_(labels.data == table.at(i).value, 0);
}

}  // namespace segnode::engine
