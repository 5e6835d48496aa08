// CT synthesis from organ-only label maps (issue 15), with the committed Hounsfield table
// (training/ct/abdomen-ct-generation.tsv) on a tiny FLARE-like map at 3 mm: the table reads and
// refuses a bad row by file and line, the synthesiser is deterministic per seed, keeps the label
// geometry, gives each structure its phase's HU, and fills the unlabelled body (not the air).
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "TestSupport.h"
#include "common/Error.h"
#include "training/Synth.h"

using namespace segnode;
using namespace segnode::training;
using segnode::test::TempDir;

namespace {

const std::string kTable = std::string(SEGNODE_SOURCE_DIR) + "/training/ct/abdomen-ct-generation.tsv";

// 48 x 40 x 24 voxels of 3 mm: a liver (1) block, a kidney (2) ellipsoid, an aorta (5) tube
// through every slice, spleen (3) and stomach (11) blocks, the rest 0 (air and body alike, as in
// FLARE22).
Subject flareLike() {
  Subject s;
  s.name = "flare-like";
  auto z = torch::arange(24).view({-1, 1, 1}), y = torch::arange(40).view({1, -1, 1}), x = torch::arange(48).view({1, 1, -1});
  auto labels = torch::zeros({24, 40, 48}, torch::kShort);
  labels.slice(0, 4, 20).slice(1, 10, 24).slice(2, 8, 22).fill_(1);
  labels.masked_fill_(((z - 12).pow(2) + (y - 26).pow(2) * 2 + (x - 34).pow(2)) < 25, 2);
  labels.masked_fill_(((y - 22).pow(2) + (x - 26).pow(2)) < 5, 5);
  labels.slice(0, 6, 14).slice(1, 10, 16).slice(2, 38, 44).fill_(3);   // spleen
  labels.slice(0, 8, 16).slice(1, 4, 8).slice(2, 24, 30).fill_(11);    // stomach
  s.labels = labels;
  s.geometry.size = {48, 40, 24};
  s.geometry.spacing = {3, 3, 3};
  auto box = (labels > 0).nonzero();
  auto lo = std::get<0>(box.min(0)), hi = std::get<0>(box.max(0));
  s.foregroundBox = {lo[0].item<int64_t>(), hi[0].item<int64_t>() + 1, lo[1].item<int64_t>(), hi[1].item<int64_t>() + 1,
                     lo[2].item<int64_t>(), hi[2].item<int64_t>() + 1};
  s.targetClasses = {1, 2, 3, 5, 11};
  return s;
}

Synthesizer ctSynthesizer(SynthOptions o = {}, std::vector<Subject> context = {}) {
  std::vector<int> lut(14);
  for (int v = 0; v < 14; ++v) lut[size_t(v)] = v;
  engine::PreprocessingSpec p;
  p.normalization = engine::Normalization::CT;
  p.clipLow = -200, p.clipHigh = 300, p.mean = 80, p.std = 60;
  o.spatial = false;
  return Synthesizer({flareLike()}, GenerationTable::readTsv(kTable), lut, p, o, std::move(context));
}

double medianWhere(const torch::Tensor& image, const torch::Tensor& mask) {
  return image.masked_select(mask).median().item<double>();
}

}  // namespace

TEST_CASE("the CT table has three phases, the 13 organs, the body and its palette", "[training][ct]") {
  auto t = GenerationTable::readTsv(kTable);
  REQUIRE(t.phases == std::vector<std::string>{"noncontrast", "portal_venous", "arterial"});
  CHECK(t.bodyLabel == 100);
  CHECK(t.aortaLabel == 5);
  for (int v = 0; v <= 13; ++v) CHECK(std::count(t.labels.begin(), t.labels.end(), v) == 1);
  CHECK(t.tissues.size() >= 5);
  const int liver = int(std::find(t.labels.begin(), t.labels.end(), 1) - t.labels.begin());
  // Contrast enhances the liver: portal-venous above unenhanced.
  CHECK(t.phasePriors[1][size_t(liver)].meanMu > t.phasePriors[0][size_t(liver)].meanMu + 30);
  CHECK_THROWS_WITH(t.phaseIndex("delayed"), Catch::Contains("noncontrast, portal_venous, arterial"));
}

TEST_CASE("a CT table row with a missing number is refused with its file and line", "[training][ct]") {
  TempDir dir;
  auto path = dir.path() / "bad.tsv";
  std::ofstream(path) << "# comment\nkind\tvalue\tname\tphase\tmean\tmean_sd\tstd\tstd_sd\tweight\n"
                         "label\t0\tair\tall\t-1000\t15\t10\t5\t1\nlabel\t1\tliver\tall\t58\t8\t12\n";
  CHECK_THROWS_WITH(GenerationTable::readTsv(path), Catch::Contains("bad.tsv:4"));
}

TEST_CASE("CT synthesis is deterministic per seed and keeps the label geometry", "[training][ct]") {
  auto synth = ctSynthesizer();
  const auto& s = synth.subjects()[0];
  auto a = synth.whole(0, Contrast::Prior, s.geometry.spacing, 2000, 8, 1, /*raw=*/true);
  auto b = synth.whole(0, Contrast::Prior, s.geometry.spacing, 2000, 8, 1, /*raw=*/true);
  auto c = synth.whole(0, Contrast::Prior, s.geometry.spacing, 2001, 8, 1, /*raw=*/true);
  CHECK(torch::equal(a.image, b.image));
  CHECK_FALSE(torch::equal(a.image, c.image));
  // Training batches (body blobs, phases, CT noise) do not depend on the threads that make them.
  auto serial = synth.sample({32, 32, 32}, 3, 5);
  synth.setThreads(2);
  auto parallel = synth.sample({32, 32, 32}, 3, 5);
  CHECK(torch::equal(serial.image, parallel.image));
  CHECK(torch::equal(serial.target, parallel.target));
  // No spatial transform: the target is the map's organs, cut to the foreground box + margin.
  const auto& fb = s.foregroundBox;
  auto expected = flareLike().labels.slice(0, std::max<int64_t>(0, fb[0] - 8), fb[1] + 8)
                      .slice(1, std::max<int64_t>(0, fb[2] - 8), fb[3] + 8)
                      .slice(2, std::max<int64_t>(0, fb[4] - 8), fb[5] + 8)
                      .to(torch::kLong);
  CHECK(torch::equal(a.target[0], expected));
}

TEST_CASE("each structure gets its phase's Hounsfield units, and the body is not air", "[training][ct]") {
  auto synth = ctSynthesizer();
  const auto& s = synth.subjects()[0];
  auto nc = synth.whole(0, Contrast::Prior, s.geometry.spacing, 7, 8, 0, true);
  auto pv = synth.whole(0, Contrast::Prior, s.geometry.spacing, 7, 8, 1, true);
  auto art = synth.whole(0, Contrast::Prior, s.geometry.spacing, 7, 8, 2, true);
  auto in = [](const SynthBatch& b, int label) { return medianWhere(b.image[0][0], b.target[0] == label); };
  // Prior mean +- 4 prior SDs, plus a margin for blur at the edges of small structures.
  CHECK(in(nc, 1) > 58 - 40);
  CHECK(in(nc, 1) < 58 + 40);
  CHECK(in(pv, 1) > 110 - 70);
  CHECK(in(pv, 1) < 110 + 70);
  CHECK(in(art, 5) > 150);  // arterial aorta: bright
  CHECK(in(nc, 5) < 90);    // unenhanced blood
  // Label 0: air (-1000) outside the body hull, tissue inside it. The hull is a rounded box
  // around the organs, so the region's corners are air and its centre row between organs is not.
  auto bg = nc.image[0][0].masked_select(nc.target[0] == 0);
  CHECK(bg.min().item<double>() < -800);
  CHECK(torch::median(bg).item<double>() > -300);
  // Normalised output: clipped to the preprocessing's window, then standardised.
  auto norm = synth.whole(0, Contrast::Prior, s.geometry.spacing, 7, 8, 0, false);
  CHECK(norm.image.max().item<double>() <= (300.0 - 80) / 60 + 1e-4);
  CHECK(norm.image.min().item<double>() >= (-200.0 - 80) / 60 - 1e-4);
}

TEST_CASE("CT training batches draw only the phases asked for", "[training][ct]") {
  SynthOptions o;
  o.phases = {2};  // arterial only: the aorta is bright in every sample
  auto synth = ctSynthesizer(o);
  auto b = synth.sample({32, 32, 16}, 2, 11);
  for (int i = 0; i < 2; ++i) {
    auto aorta = b.target[i] == 5;
    if (aorta.any().item<bool>()) CHECK(medianWhere(b.image[i][0], aorta) > (150.0 - 80) / 60);
  }
}

TEST_CASE("body context moves into the hull by the organs' centroids and never over an organ", "[training][ct]") {
  // The context: the same anatomy with bowel (112) behind the kidney, where the map has 0.
  Subject context = flareLike();
  context.labels.slice(0, 8, 16).slice(1, 32, 37).slice(2, 34, 40).fill_(112);
  context.labels.slice(0, 4, 20).slice(1, 10, 24).slice(2, 8, 22).fill_(112);  // and over the liver
  auto synth = ctSynthesizer({}, {context});
  auto labels = synth.subjects()[0].labels;
  auto original = flareLike().labels;
  CHECK(torch::equal(labels.masked_select(original > 0), original.masked_select(original > 0)));
  auto block = labels.slice(0, 8, 16).slice(1, 32, 37).slice(2, 34, 40);
  CHECK((block == 112).sum().item<int64_t>() == block.numel());
  // Without context the same voxels are the hull's inside, painted as blobs.
  auto plain = ctSynthesizer().subjects()[0].labels.slice(0, 8, 16).slice(1, 32, 37).slice(2, 34, 40);
  CHECK((plain == 100).all().item<bool>());
}
