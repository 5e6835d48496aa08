// segnode-distill's pieces on tiny volumes (CPU): plan rules, synthesis, losses, training steps,
// export -> load -> predict, metrics.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <cmath>

#include "TestSupport.h"
#include "engine/Model.h"
#include "engine/TinyBundle.h"
#include "training/Losses.h"
#include "training/Metrics.h"
#include "training/Plan.h"
#include "training/Synth.h"
#include "training/TrainState.h"
#include "training/Trainer.h"

using namespace segnode;
using namespace segnode::training;
using segnode::test::TempDir;

TEST_CASE("plan reproduces nnU-Net's published 3d_fullres plan for Hippocampus (Dataset004)", "[training][plan]") {
  // 260 training cases, all 1 mm, median shape after cropping 36 x 50 x 35, 3 labels.
  Fingerprint fp;
  for (int i = 0; i < 260; ++i) {
    fp.spacings.push_back({1, 1, 1});
    fp.shapesAfterCrop.push_back({36, 50, 35});
  }
  fp.numLabels = 3;
  Plan p = makePlan(fp);
  CHECK(p.patchSize == Int3{40, 56, 40});
  CHECK(p.batchSize == 9);
  REQUIRE(p.stages() == 4);
  CHECK(p.features == std::vector<int>{32, 64, 128, 256});
  for (int s = 1; s < 4; ++s) CHECK(p.strides[size_t(s)] == std::array<int, 3>{2, 2, 2});
}

TEST_CASE("plan topology pools only axes within a factor 2 of the finest spacing", "[training][plan]") {
  // Thick slices (x, y 0.8 mm, z 3 mm): z is pooled once in-plane spacing has caught up.
  Topology t = poolAndConvProps({0.8, 0.8, 3.0}, {256, 256, 32}, 4);
  REQUIRE(t.strides.size() == 7);
  CHECK(t.strides[1] == std::array<int, 3>{2, 2, 1});
  CHECK(t.strides[2] == std::array<int, 3>{2, 2, 2});
  CHECK(t.strides[6] == std::array<int, 3>{2, 2, 1});
  CHECK(t.kernelSizes[0] == std::array<int, 3>{3, 3, 1});
  CHECK(t.kernelSizes[1] == std::array<int, 3>{3, 3, 3});
  CHECK(t.poolsPerAxis == Int3{6, 6, 3});
  CHECK(t.patchSize == Int3{256, 256, 32});
  // Anisotropic spacing: the 10th percentile replaces the median on the coarse axis.
  Fingerprint fp;
  for (double z : {5.0, 5.0, 5.0, 1.5, 5.0}) {
    fp.spacings.push_back({0.7, 0.7, z});
    fp.shapesAfterCrop.push_back({512, 512, 40});
  }
  auto ts = targetSpacing(fp);
  CHECK(ts[2] == Approx(2.9).margin(1e-9));  // numpy percentile 10 of {1.5, 5, 5, 5, 5}
}

namespace {

// A 32^3 map: background 0, a sphere of generation label 7 (target 1), a box of label 9 (target 2).
Subject tinySubject() {
  Subject s;
  s.name = "tiny";
  auto z = torch::arange(32).view({-1, 1, 1}), y = torch::arange(32).view({1, -1, 1}), x = torch::arange(32).view({1, 1, -1});
  auto r2 = (z - 16).pow(2) + (y - 14).pow(2) + (x - 15).pow(2);
  auto labels = torch::zeros({32, 32, 32}, torch::kShort);
  labels.masked_fill_(r2 < 64, 7);
  labels.slice(0, 20, 28).slice(1, 4, 12).slice(2, 18, 30).fill_(9);
  s.labels = labels;
  s.geometry.size = {32, 32, 32};
  s.foregroundBox = {4, 28, 4, 28, 4, 30};
  return s;
}

GenerationTable tinyTable() {
  GenerationTable t;
  t.labels = {0, 7, 9};
  t.classes = {0, 1, 2};
  t.priors = {{10, 2, 3, 1}, {120, 10, 10, 3}, {60, 8, 8, 2}};
  return t;
}

std::vector<int> tinyLut() {
  std::vector<int> lut(10, 0);
  lut[7] = 1;
  lut[9] = 2;
  return lut;
}

engine::PreprocessingSpec mr() { return {}; }

}  // namespace

TEST_CASE("synthesis is deterministic per seed and keeps the label geometry", "[training][synth]") {
  SynthOptions o;
  Synthesizer synth({tinySubject()}, tinyTable(), tinyLut(), mr(), o);
  auto a = synth.sample({32, 32, 32}, 2, 42), b = synth.sample({32, 32, 32}, 2, 42), c = synth.sample({32, 32, 32}, 2, 43);
  CHECK(torch::equal(a.image, b.image));
  CHECK(torch::equal(a.target, b.target));
  CHECK_FALSE(torch::equal(a.image, c.image));
  CHECK(a.image.sizes() == std::vector<int64_t>{2, 1, 32, 32, 32});
  // Only the target classes of the table appear.
  CHECK(a.target.max().item<int64_t>() <= 2);

  // Without a spatial transform the target is exactly the label map (centred whole volume).
  o.spatial = false;
  Synthesizer still({tinySubject()}, tinyTable(), tinyLut(), mr(), o);
  auto w = still.whole(0, Contrast::Prior, {1, 1, 1}, 7, 32);
  auto expected = torch::tensor(std::vector<int64_t>{0, 0, 0, 0, 0, 0, 0, 1, 0, 2}).index({tinySubject().labels.to(torch::kLong)});
  CHECK(torch::equal(w.target[0], expected));
  // The intensities follow the classes: the sphere (prior 120) is brighter than the box (60).
  auto img = w.image[0][0];
  CHECK(img.masked_select(expected == 1).mean().item<double>() > img.masked_select(expected == 2).mean().item<double>());
  // A random rotation/deformation moves voxels but keeps the sphere roughly its size.
  double sphere = double((expected == 1).sum().item<int64_t>());
  auto moved = synth.sample({96, 96, 96}, 1, 5, 0).target;  // the patch holds the whole region
  double movedSphere = double((moved == 1).sum().item<int64_t>());
  CHECK(movedSphere > 0.3 * sphere);
  CHECK(movedSphere < 2.0 * sphere);
}

TEST_CASE("a batch is the same on any number of synthesis threads", "[training][synth]") {
  Synthesizer synth({tinySubject(), tinySubject()}, tinyTable(), tinyLut(), mr(), SynthOptions{});
  auto one = synth.sample({24, 24, 24}, 5, 11);
  synth.setThreads(3);  // more samples than threads: a thread makes several
  auto three = synth.sample({24, 24, 24}, 5, 11);
  CHECK(torch::equal(one.image, three.image));
  CHECK(torch::equal(one.target, three.target));
  CHECK_FALSE(torch::equal(one.image[0], one.image[1]));  // the samples of a batch differ
}

// The probe's stage timing only waits and reads the clock: the batch is the one training gets.
TEST_CASE("timing synthesis by stage leaves the batch unchanged and names every stage", "[training][synth]") {
  Synthesizer synth({tinySubject(), tinySubject()}, tinyTable(), tinyLut(), mr(), SynthOptions{});
  Synthesizer::StageSeconds stages;
  auto timed = synth.withStageSeconds(&stages).sample({24, 24, 24}, 3, 11);
  auto plain = synth.sample({24, 24, 24}, 3, 11);
  CHECK(torch::equal(timed.image, plain.image));
  CHECK(torch::equal(timed.target, plain.target));
  std::vector<std::string> names;
  for (const auto& [stage, seconds] : stages) {
    names.push_back(stage);
    CHECK(seconds >= 0);
  }
  CHECK(names == std::vector<std::string>{"spatial transform", "labels", "intensities", "bias field", "resolution",
                                          "noise", "normalisation", "patch centre", "crop"});
  // Plain sampling never times: the list is left as it was.
  const auto before = stages;
  synth.sample({24, 24, 24}, 3, 12);
  CHECK(stages == before);
}

// CUDA synthesis blurs by the banded product (Synth.h); the same arithmetic on the CPU must give
// the convolution's blur on every axis, edges (zero beyond them) included.
TEST_CASE("the banded-product blur equals the convolution on every axis", "[training][synth]") {
  torch::manual_seed(3);
  auto x = torch::rand({2, 1, 9, 13, 17});
  for (int dim = 2; dim <= 4; ++dim)
    for (double sigma : {0.5, 1.7, 4.2}) {  // 4.2: a kernel wider than the 9-voxel axis
      auto conv = gaussianBlurAxis(x, dim, sigma, false), banded = gaussianBlurAxis(x, dim, sigma, true);
      INFO("dim " << dim << ", sigma " << sigma);
      REQUIRE(banded.sizes() == x.sizes());
      CHECK(torch::allclose(banded, conv, 1e-5, 1e-6));
      CHECK_FALSE(torch::allclose(banded, x, 1e-3, 1e-3));  // it did blur
    }
  CHECK(torch::equal(gaussianBlurAxis(x, 3, 0.2, true), x));  // under 0.3 voxels: no blur
}

// Why a resumed run keeps its data stream across the change to per-sample generators: a copy of
// the default generator given a seed draws what torch::manual_seed with that seed gave.
TEST_CASE("a seeded copy of the default generator draws what manual_seed gave", "[training][synth]") {
  torch::manual_seed(1234);
  auto global = torch::randn({1000});
  auto copy = at::globalContext().defaultGenerator(torch::kCPU).clone();
  copy.set_current_seed(1234);
  CHECK(torch::equal(global, torch::randn({1000}, copy, torch::kFloat)));
}

TEST_CASE("KL distillation is zero for identical logits and its gradient matches finite differences",
          "[training][loss]") {
  torch::manual_seed(3);
  auto t = torch::randn({1, 3, 4, 4, 4}, torch::kDouble);
  CHECK(klDistillationLoss(t, t, 2.0).item<double>() == Approx(0).margin(1e-12));
  auto s = torch::randn({1, 3, 4, 4, 4}, torch::kDouble).requires_grad_(true);
  auto loss = klDistillationLoss(s, t, 2.0);
  CHECK(loss.item<double>() > 0);
  loss.backward();
  auto grad = s.grad();
  const double eps = 1e-6;
  for (int64_t i : {0, 17, 100, 191}) {
    auto plus = s.detach().clone(), minus = s.detach().clone();
    plus.view(-1)[i] += eps;
    minus.view(-1)[i] -= eps;
    double fd = (klDistillationLoss(plus, t, 2.0).item<double>() - klDistillationLoss(minus, t, 2.0).item<double>()) / (2 * eps);
    CHECK(grad.view(-1)[i].item<double>() == Approx(fd).epsilon(1e-5).margin(1e-9));
  }
}

TEST_CASE("gradient distillation is zero for identical maps and positive for shifted ones", "[training][loss]") {
  // Two classes: a cube edge the softmax follows sharply.
  auto logits = torch::zeros({1, 2, 16, 16, 16});
  logits.select(1, 1).slice(1, 4, 12).slice(2, 4, 12).slice(3, 4, 12).fill_(8);
  for (auto op : {EdgeOperator::Sobel, EdgeOperator::Prewitt}) {
    CHECK(gradientDistillationLoss(logits, logits, op, 4).item<double>() == Approx(0).margin(1e-12));
    auto shifted = torch::roll(logits, {2}, {2});
    CHECK(gradientDistillationLoss(shifted, logits, op, 4).item<double>() > 1e-4);
  }
  // Edges are where the map changes: zero inside the cube, positive on its faces.
  auto e = edgeMagnitude(torch::softmax(logits, 1), EdgeOperator::Sobel);
  CHECK(e[0][1][8][8][8].item<double>() < 1e-5);
  CHECK(e[0][1][8][8][4].item<double>() > 0.1);
}

TEST_CASE("a few training steps lower the loss, and export -> load -> predict gives the same output",
          "[training][train]") {
  torch::set_num_threads(2);
  auto spec = test::tinySpec(3);
  spec.architecture.deepSupervision = true;
  SynthOptions o;
  o.spatial = false;  // one fixed geometry: the loss must fall within a few steps
  Synthesizer synth({tinySubject()}, tinyTable(), tinyLut(), spec.preprocessing, o);
  torch::manual_seed(1);
  engine::PlainConvUNet net(spec.architecture);
  initialiseHe(net);
  const std::array<int64_t, 3> patch{48, 48, 48};  // the whole region: foreground box + margin
  auto fixed = synth.sample(patch, 2, 99);
  auto lossOn = [&] {
    torch::NoGradGuard ng;
    return deepSupervisionLoss(net->forwardAll(fixed.image), fixed.target).item<double>();
  };
  double before = lossOn();
  ScheduleOptions s;
  s.iterations = 25;
  s.optimizer = "adamw";
  s.learningRate = 1e-2;
  s.logEvery = 1000;
  TempDir dir;
  auto r = trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU);
  CHECK(r.iterations == 25);
  double after = lossOn();
  CHECK(after < 0.8 * before);
  CHECK(std::filesystem::exists(dir.path() / "work" / "curves.csv"));

  // The planned total is fixed: a resume that changes it is refused; within it, the count continues.
  s.iterations = 27;
  s.resume = true;
  CHECK_THROWS_WITH(trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU),
                    Catch::Contains("--iterations 25"));
  s.iterations = 25;
  CHECK(trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU).iterations == 25);
  // So is what its batches are drawn from: the state saved above has no recipe (as one written
  // before recipes were recorded) and takes the command's; from then on another one is refused,
  // naming the part that differs.
  s.recipe = {{"generation_table", "table-a"}, {"label_maps", "maps-a"}};
  CHECK(trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU).iterations == 25);
  CHECK(readRunState(dir.path() / "work").recipe == s.recipe);
  s.recipe["generation_table"] = "table-b";
  CHECK_THROWS_WITH(trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU),
                    Catch::Contains("generation_table table-a, this command from table-b"));
  s.recipe = {{"generation_table", "table-a"}};  // a part the run had, now missing
  CHECK_THROWS_WITH(trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU),
                    Catch::Contains("label_maps maps-a, this command from none"));
  s.recipe = {{"generation_table", "table-a"}, {"label_maps", "maps-a"}};
  CHECK(trainTeacher(net, synth, patch, 2, s, dir.path() / "work", torch::kCPU).iterations == 25);
  // A teacher is its weights: the same weights under another version teach on, other weights do not.
  RunState had = readRunState(dir.path() / "work"), other = had;
  had.recipe["teacher"] = "abdomen-ct-teacher@0.5.0 22a12d69";
  other.recipe["teacher"] = "abdomen-ct-teacher@0.5.1 22a12d69";
  CHECK_NOTHROW(checkSameRun(had, other));
  other.recipe["teacher"] = "abdomen-ct-teacher@0.5.0 66bfdd48";
  CHECK_THROWS_WITH(checkSameRun(had, other), Catch::Contains("teacher abdomen-ct-teacher@0.5.0 22a12d69, this command from "
                                                              "abdomen-ct-teacher@0.5.0 66bfdd48"));

  spec.provenance = nlohmann::ordered_json::object();
  auto written = writeTrainedBundle(spec, net, dir.path() / "bundle", torch::kFloat);
  auto loaded = engine::SegmentationModel::load(engine::loadBundleSpec(written.directory), engine::Backend::Eager);
  net->eval();
  {
    torch::NoGradGuard ng;
    auto expect = net->forward(fixed.image);
    auto got = loaded->forward(fixed.image);
    CHECK(torch::allclose(expect, got, 1e-5, 1e-5));
  }
  CHECK_FALSE(loaded->spec().untrained());

  // Students: the family rule shrinks features; distillation runs and writes nothing odd.
  std::vector<engine::PlainConvUNet> students{engine::PlainConvUNet(spec.architecture.withWidthDivisor(2, 2))};
  initialiseHe(students[0]);
  ScheduleOptions ds = s;
  ds.iterations = 3;
  ds.resume = false;
  auto dr = distillStudents(net, students, {StudentRecipe{"w2"}}, synth, {32, 32, 32}, 1, ds, DistillSettings{},
                            dir.path() / "distill", torch::kCPU);
  CHECK(dr.iterations == 3);
  CHECK(students[0]->parameterCount() < net->parameterCount() / 3);
}

TEST_CASE("Dice and HD95 on known shapes", "[training][metrics]") {
  auto a = torch::zeros({20, 20, 20}, torch::kBool), b = torch::zeros({20, 20, 20}, torch::kBool);
  a.slice(0, 5, 15).slice(1, 5, 15).slice(2, 5, 15).fill_(true);
  b.slice(0, 5, 15).slice(1, 5, 15).slice(2, 7, 17).fill_(true);  // shifted 2 voxels along x
  CHECK(dice(a, a) == Approx(1));
  CHECK(dice(a, b) == Approx(0.8));
  CHECK(hd95(a, a, {1, 1, 1}) == Approx(0));
  CHECK(hd95(a, b, {1.5, 1, 1}) == Approx(3.0));  // 2 voxels of 1.5 mm
  CHECK(std::isnan(hd95(a, torch::zeros_like(a), {1, 1, 1})));
  // Distance transform: exact Euclidean distance to one site with anisotropic spacing.
  auto site = torch::zeros({5, 6, 7}, torch::kBool);
  site[1][2][3] = true;
  auto d = distanceTransform(site, {1, 2, 3});
  CHECK(d[4][5][6].item<double>() == Approx(std::sqrt(9.0 * 9 + 6.0 * 6 + 3.0 * 3)));
}
