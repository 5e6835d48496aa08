// Plausibility checks and the per-case confidence (issue 16): the confidence of averaged logits,
// the ranges a bundle declares (read, written, refused when wrong), and the reasons a result
// outside them gets.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "TestSupport.h"
#include "common/Error.h"
#include "engine/Confidence.h"
#include "engine/Nifti.h"
#include "engine/Plausibility.h"
#include "engine/Segmenter.h"
#include "training/PlausibilityRanges.h"

using namespace segnode;
using namespace segnode::engine;
using segnode::test::TempDir;

namespace {

// Background, "left thing", "right thing", "organ".
BundleSpec fourLabels() {
  BundleSpec s;
  s.name = "t";
  for (auto [v, n] : std::vector<std::pair<int, std::string>>{{0, "background"}, {1, "left thing"}, {2, "right thing"}, {5, "organ"}}) {
    LabelInfo l;
    l.value = v, l.name = n;
    s.labels.push_back(l);
  }
  return s;
}

// 20 x 20 x 10 voxels of 2 mm (8 uL each = 0.008 mL): `left`, `right` and `organ` voxels of
// each value, the rest background.
Volume labelMap(int left, int right, int organ) {
  Volume v;
  v.geometry.size = {20, 20, 10};
  v.geometry.spacing = {2, 2, 2};
  auto flat = torch::zeros({4000}, torch::kByte);
  flat.slice(0, 0, left).fill_(1);
  flat.slice(0, left, left + right).fill_(2);
  flat.slice(0, left + right, left + right + organ).fill_(5);
  v.data = flat.view({10, 20, 20});
  return v;
}

}  // namespace

TEST_CASE("confidence: a clear winner is near 1, a tie has no margin, background is not counted", "[engine][plausibility]") {
  ConfidenceAccumulator clear;
  auto logits = torch::zeros({3, 2, 4, 4});
  logits[1].fill_(10);  // class 1 everywhere, by far
  clear.add(logits);
  auto c = clear.result();
  CHECK(c.labelledVoxels == 1 * 2 * 2);  // every second voxel along each axis
  CHECK(c.meanMaxProbability > 0.999);
  CHECK(c.lowMarginFraction == 0);

  ConfidenceAccumulator tie;
  auto even = torch::zeros({3, 2, 4, 4});
  even[0].fill_(-5);  // classes 1 and 2 tie: p = 0.5 each
  tie.add(even);
  CHECK(tie.result().meanMaxProbability == Approx(0.5).epsilon(0.01));
  CHECK(tie.result().lowMarginFraction == 1);

  ConfidenceAccumulator perClass;  // class 1 clear in one half, classes 1 and 2 tie in the other
  auto halves = torch::zeros({3, 2, 4, 4});
  halves[0].fill_(-5);
  halves.select(0, 1).slice(2, 0, 2).fill_(10);
  halves.select(0, 2).slice(2, 2, 4).fill_(0.01);  // class 2 wins the tie, by a hair
  perClass.add(halves);
  auto pc = perClass.result().classMeanMaxProbability;
  REQUIRE(pc.size() == 3);
  CHECK(pc[0] == 0);  // no voxel won
  CHECK(pc[1] > 0.999);
  CHECK(pc[2] == Approx(0.5).epsilon(0.01));

  ConfidenceAccumulator none;
  auto background = torch::zeros({3, 2, 4, 4});
  background[0].fill_(4);
  none.add(background);
  CHECK(none.result().labelledVoxels == 0);
  CHECK(none.result().meanMaxProbability == 0);
}

TEST_CASE("a result outside the declared ranges is implausible, with what was measured and expected", "[engine][plausibility]") {
  BundleSpec spec = fourLabels();
  auto& p = spec.plausibility;
  p.declared = true;
  p.labelledVolumeMl = {4, 20};
  p.structuresPresent = 1;
  p.minStructureMl = 0.05;
  p.leftRightRatio = {0.8, 1.25};
  p.structureVolumeMl = {{"organ", {0, 10}}};
  p.minConfidence = 0.7;
  Confidence sure;
  sure.meanMaxProbability = 0.95;

  auto good = checkPlausibility(spec, labelMap(500, 500, 1000), sure);  // 4 + 4 + 8 mL
  CHECK(good.plausible);
  CHECK_FALSE(good.lowConfidence);
  CHECK(good.labelledMl == Approx(16));
  CHECK(good.leftRightRatio == Approx(1));

  auto lopsided = checkPlausibility(spec, labelMap(900, 300, 1000), sure);
  CHECK_FALSE(lopsided.plausible);
  CHECK_THAT(lopsided.reasonText(), Catch::Contains("left/right volume ratio 3, expected 0.8-1.25"));

  auto tiny = checkPlausibility(spec, labelMap(2, 0, 1), sure);
  CHECK_FALSE(tiny.plausible);
  CHECK_THAT(tiny.reasonText(), Catch::Contains("labelled volume 0.024 mL, expected 4-20 mL"));
  CHECK_THAT(tiny.reasonText(), Catch::Contains("0 of 3 structures present, expected at least 3"));

  auto bigOrgan = checkPlausibility(spec, labelMap(100, 100, 2000), sure);
  CHECK_THAT(bigOrgan.reasonText(), Catch::Contains("organ 16 mL, expected 0-10 mL"));

  Confidence unsure;
  unsure.meanMaxProbability = 0.4;
  auto flagged = checkPlausibility(spec, labelMap(500, 500, 1000), unsure);
  CHECK(flagged.plausible);
  CHECK(flagged.lowConfidence);
  CHECK_THAT(flagged.summary(), Catch::Contains("confidence 0.40 (LOW)"));

  spec.plausibility = {};  // a bundle without the section: measured, never implausible
  CHECK(checkPlausibility(spec, labelMap(2, 0, 1), unsure).plausible);
}

TEST_CASE("a few organs outside their own ranges are left out and the rest goes on - anything more is rejected",
          "[engine][plausibility]") {
  BundleSpec spec = fourLabels();
  auto& p = spec.plausibility;
  p.declared = true;
  p.labelledVolumeMl = {4, 20};
  p.structuresPresent = 0.6;  // 2 of 3
  p.minStructureMl = 0.05;
  p.leftRightRatio = {0.8, 1.25};
  p.structureVolumeMl = {{"organ", {1, 10}}};  // a lower bound too: the rest is checked without it
  SegmentStats stats;
  stats.confidence.meanMaxProbability = 0.95;

  Volume big = labelMap(500, 500, 1500);  // the organ 12 mL, all else within
  const auto check = checkPlausibility(spec, big, stats);
  REQUIRE_FALSE(check.plausible);
  CHECK(check.structuresOutside == std::vector<size_t>{3});
  CHECK(omittableStructures(check, spec) == std::vector<size_t>{3});
  const auto kept = omitStructures(spec, big, stats, check);
  CHECK(kept.plausible);
  CHECK(kept.omitted == std::vector<std::string>{"organ 12 mL, expected 1-10 mL"});
  CHECK(kept.omittedStructures == std::vector<size_t>{3});
  CHECK(kept.summary() == "plausible without: organ 12 mL, expected 1-10 mL; confidence 0.95");
  CHECK(big.data.eq(5).sum().item<int64_t>() == 0);     // the organ is background now
  CHECK(big.data.gt(0).sum().item<int64_t>() == 1000);  // and nothing else changed

  // A case-level range fails too (left/right): the input is wrong, nothing is left out.
  Volume lopsided = labelMap(900, 300, 1500);
  const auto both = checkPlausibility(spec, lopsided, stats);
  CHECK(omittableStructures(both, spec).empty());
  CHECK(omitStructures(spec, lopsided, stats, both).omitted.empty());
  CHECK(lopsided.data.eq(5).sum().item<int64_t>() == 1500);

  // More organs out of range than a quarter of the structures (here one of three): rejected.
  p.structureVolumeMl = {{"organ", {0, 10}}, {"left thing", {0, 1}}};
  Volume two = labelMap(500, 500, 1500);
  CHECK(omittableStructures(checkPlausibility(spec, two, stats), spec).empty());

  // What is left must pass on its own: with every structure required, leaving one out cannot.
  p.structureVolumeMl = {{"organ", {0, 10}}};
  p.structuresPresent = 1;
  Volume all = labelMap(500, 500, 1500);
  const auto first = checkPlausibility(spec, all, stats);
  const auto after = omitStructures(spec, all, stats, first);
  CHECK_FALSE(after.plausible);
  CHECK(after.reasonText() == first.reasonText());
  CHECK(after.omitted.empty());
}

TEST_CASE("connected share: organs in one piece pass, a label scattered in fragments does not", "[engine][plausibility]") {
  BundleSpec spec = fourLabels();
  Volume v = labelMap(0, 0, 0);
  auto d = v.data;                                         // [10, 20, 20], all background
  d.slice(0, 0, 4).slice(1, 0, 5).slice(2, 0, 5).fill_(1);  // one block of 100 voxels
  d.slice(0, 6, 9).slice(1, 10, 20).slice(2, 10, 11).fill_(2);  // 30 voxels in one piece...
  d.slice(0, 9, 10).slice(1, 0, 10).slice(2, 19, 20).fill_(2);  // ...and 10 elsewhere
  CHECK(connectedShare(v) == Approx(130.0 / 140));
  auto& p = spec.plausibility;
  p.declared = true;
  p.minConnectedShare = 0.95;
  auto r = checkPlausibility(spec, v, Confidence{});
  CHECK(r.connectedShare == Approx(130.0 / 140));
  CHECK_FALSE(r.plausible);
  CHECK_THAT(r.reasonText(), Catch::Contains("fragmented: 93 % of the labelled voxels in their structure's largest piece, expected at least 95 %"));

  d.zero_();
  for (int64_t k = 0; k < 10; k += 2)  // a checkerboard of single voxels: noise-like
    for (int64_t j = 0; j < 20; j += 2) d[k][j][0] = 5;
  CHECK(connectedShare(v) == Approx(1.0 / 50));
  d.zero_();
  CHECK(connectedShare(v) == 0);  // nothing labelled
}

TEST_CASE("bundle.yaml plausibility: written and read back, and a wrong entry is refused by key", "[engine][plausibility][bundle]") {
  TempDir dir;
  BundleSpec spec = fourLabels();
  spec.version = {0, 0, 1};
  spec.architecture = ArchitectureSpec::nnunetDefault(3, 4);
  spec.weightsSha256 = std::string(64, 'a');
  auto& p = spec.plausibility;
  p.declared = true;
  p.labelledVolumeMl = {800, 2200};
  p.structuresPresent = 0.75;
  p.minStructureMl = 0.05;
  p.leftRightRatio = {0.8, 1.25};
  p.structureVolumeMl = {{"organ", {0, 3000}}};
  p.minConfidence = 0.81;
  p.minConnectedShare = 0.7;
  p.source = "test";
  saveBundleSpec(spec, dir / "bundle.yaml");
  auto back = loadBundleSpec(dir.path()).plausibility;
  CHECK(back.declared);
  CHECK(back.labelledVolumeMl == PlausibilitySpec::Range{800, 2200});
  CHECK(back.structuresPresent == Approx(0.75));
  CHECK(back.leftRightRatio == PlausibilitySpec::Range{0.8, 1.25});
  REQUIRE(back.structureVolumeMl.size() == 1);
  CHECK(back.structureVolumeMl[0].first == "organ");
  CHECK(back.minConfidence == Approx(0.81));
  CHECK(back.minConnectedShare == Approx(0.7));

  std::string text;
  {
    std::ifstream in(dir / "bundle.yaml");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto at = text.find("organ: [0, 3000]");
  REQUIRE(at != std::string::npos);
  std::ofstream(dir / "bundle.yaml") << text.replace(at, 5, "liver");
  CHECK_THROWS_WITH(loadBundleSpec(dir.path()), Catch::Contains("plausibility.structure_volume_ml.liver"));
}

TEST_CASE("export's ranges hold every training map and validation case - CT organs bounded above only", "[engine][plausibility][training]") {
  TempDir dir;
  BundleSpec spec = fourLabels();
  for (auto& l : spec.labels) l.sourceValues = {l.value};
  std::vector<std::string> maps;
  for (auto [left, right, organ] : std::vector<std::array<int, 3>>{{500, 500, 1000}, {600, 500, 1500}}) {
    maps.push_back((dir / ("map" + std::to_string(maps.size()) + ".nii.gz")).string());
    Volume v = labelMap(left, right, organ);
    v.data = v.data.to(torch::kShort);
    writeNifti(maps.back(), v);
  }
  training::ValidationExtremes validation;
  validation.lowestConfidence = 0.8;
  validation.labelledVolumeMl = PlausibilitySpec::Range{14, 30};
  auto mr = training::plausibilityFromLabelMaps(spec, maps, validation);
  CHECK(mr.labelledVolumeMl[0] == Approx(16 * 0.75));   // the smaller map (16 mL), widened
  CHECK(mr.labelledVolumeMl[1] == Approx(30));          // the validation case above 20.8 * 1.25 = 26
  CHECK(mr.structuresPresent == Approx(0.75));
  CHECK(mr.leftRightRatio[0] == Approx(1 / 1.25));
  CHECK(mr.leftRightRatio[1] == Approx(1.2 * 1.25));
  CHECK(mr.minConfidence == Approx(0.75));
  CHECK(mr.minConnectedShare == Approx(0.8));  // each map is one piece per label, less the tolerance of 0.2
  CHECK(mr.structureVolumeMl.empty());
  for (const auto& m : maps) CHECK(checkPlausibility([&] { auto s = spec; s.plausibility = mr; return s; }(), readNifti(m), Confidence{}).plausible);

  // A student's own bias on its validation cases widens the ranges (w8: left/right 0.69-0.76).
  validation.leftRightRatio = PlausibilitySpec::Range{0.7, 1.1};
  validation.structuresPresent = 0.5;
  validation.connectedShare = 0.6;
  auto biased = training::plausibilityFromLabelMaps(spec, maps, validation);
  CHECK(biased.leftRightRatio[0] == Approx(0.7));
  CHECK(biased.leftRightRatio[1] == Approx(1.2 * 1.25));  // the maps' bound is the wider one
  CHECK(biased.structuresPresent == Approx(0.5));
  CHECK(biased.minConnectedShare == Approx(0.6));

  // A model that misses most structures on its validation cases gets no ranges that would pass it.
  validation.structuresPresent = 1.0 / 3;  // below half of 0.75
  CHECK_THROWS_WITH(training::plausibilityFromLabelMaps(spec, maps, validation),
                    Catch::Contains("only 33 % of the structures present") && Catch::Contains("every training map has 100 %"));

  spec.modality = Modality::CT;
  auto ct = training::plausibilityFromLabelMaps(spec, maps, {});
  CHECK(ct.labelledVolumeMl[0] == Approx(16.0 / 20));
  CHECK(ct.leftRightRatio[1] == 0);
  REQUIRE(ct.structureVolumeMl.size() == 3);
  CHECK(ct.structureVolumeMl[2].first == "organ");
  CHECK(ct.structureVolumeMl[2].second[0] == 0);
  CHECK(ct.structureVolumeMl[2].second[1] == Approx(12 * 1.25));
  // A validation case with more organ than any map (a student's thick adrenal) stays inside.
  training::ValidationExtremes thick;
  thick.largestStructureMl = {{"organ", 20}, {"left thing", 1}};
  auto held = training::plausibilityFromLabelMaps(spec, maps, thick);
  CHECK(held.structureVolumeMl[2].second[1] == Approx(20 * 1.005));
  CHECK(held.structureVolumeMl[0].second[1] == Approx(ct.structureVolumeMl[0].second[1]));  // the maps' bound is wider
  CHECK(ct.minConfidence == 0);
  REQUIRE(ct.lowestInputAtMost);
  CHECK(*ct.lowestInputAtMost == -500);
  CHECK_FALSE(mr.lowestInputAtMost);  // an MR has no units to check
}

TEST_CASE("a CT bundle refuses an input with no air in it: not Hounsfield units", "[engine][plausibility]") {
  BundleSpec spec = fourLabels();
  spec.modality = Modality::CT;
  auto& p = spec.plausibility;
  p.declared = true;
  p.lowestInputAtMost = -500;
  const Volume labels = labelMap(500, 500, 1000);
  auto ct = checkPlausibility(spec, labels, Confidence{}, std::nullopt, -1024.0);
  CHECK(ct.plausible);
  auto mr = checkPlausibility(spec, labels, Confidence{}, std::nullopt, 0.0);  // an MR's magnitudes
  CHECK_FALSE(mr.plausible);
  CHECK(mr.reasonText() == "not a CT in Hounsfield units: lowest value 0, expected at most -500 (air)");
  CHECK(checkPlausibility(spec, labels, Confidence{}).plausible);  // the caller gave no input: not checked

  TempDir dir;  // and it survives bundle.yaml
  spec.version = {0, 0, 1};
  spec.architecture = ArchitectureSpec::nnunetDefault(3, 4);
  spec.weightsSha256 = std::string(64, 'a');
  saveBundleSpec(spec, dir / "bundle.yaml");
  const auto back = loadBundleSpec(dir.path()).plausibility;
  REQUIRE(back.lowestInputAtMost);
  CHECK(*back.lowestInputAtMost == -500);
}

TEST_CASE("volumes and connected share are the same whatever integer or float type holds the labels", "[engine][plausibility]") {
  BundleSpec spec = fourLabels();
  Volume v = labelMap(100, 40, 1000);  // uint8, as the segmenter writes up to 255 labels
  v.data.view(-1)[3999] = 7;            // a value the table lacks: counted with the largest (5)
  const auto volumes = labelVolumesMl(v, spec.labels);
  const double share = connectedShare(v);
  CHECK(volumes[1] == Approx(100 * 8.0 / 1000));
  CHECK(volumes[3] == Approx(1001 * 8.0 / 1000));
  for (auto type : {torch::kShort, torch::kInt, torch::kLong, torch::kFloat}) {
    Volume w = v;
    w.data = v.data.to(type);
    CHECK(labelVolumesMl(w, spec.labels) == volumes);
    CHECK(connectedShare(w) == share);
  }
}
