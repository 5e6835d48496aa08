// The distillation loop's guarantees (issue 10), on tiny networks and volumes on the CPU: pruning
// from the teacher, exact resume across calls, a new batch every step, the EMA, class-balanced KD,
// the separable edge operator, per-volume normalisation, class-centred patches, validation Dice,
// feature KD against the teacher's pruned channels.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <set>

#include "TestSupport.h"
#include "engine/TinyBundle.h"
#include "training/Losses.h"
#include "training/Prune.h"
#include "training/Synth.h"
#include "training/TrainState.h"
#include "training/Trainer.h"
#include "training/Validation.h"

using namespace segnode;
using namespace segnode::training;
using segnode::test::TempDir;

namespace {

// A 32^3 map: background 0, a sphere of generation label 7 (target 1), a small box of label 9
// (target 2).
Subject subject() {
  Subject s;
  s.name = "tiny";
  auto z = torch::arange(32).view({-1, 1, 1}), y = torch::arange(32).view({1, -1, 1}), x = torch::arange(32).view({1, 1, -1});
  auto labels = torch::zeros({32, 32, 32}, torch::kShort);
  labels.masked_fill_(((z - 16).pow(2) + (y - 14).pow(2) + (x - 15).pow(2)) < 64, 7);
  labels.slice(0, 24, 27).slice(1, 4, 7).slice(2, 22, 26).fill_(9);
  s.labels = labels;
  s.geometry.size = {32, 32, 32};
  s.foregroundBox = {4, 28, 4, 28, 4, 30};
  s.targetClasses = {1, 2};
  return s;
}

Synthesizer synthesizer(SynthOptions o = {}) {
  GenerationTable t;
  t.labels = {0, 7, 9};
  t.classes = {0, 1, 2};
  t.priors = {{10, 2, 3, 1}, {120, 10, 10, 3}, {60, 8, 8, 2}};
  std::vector<int> lut(10, 0);
  lut[7] = 1, lut[9] = 2;
  return Synthesizer({subject()}, t, lut, engine::PreprocessingSpec{}, o);
}

engine::ArchitectureSpec teacherArch() {
  auto a = test::tinySpec(3).architecture;
  a.features = {8, 16, 32};
  a.deepSupervision = true;
  return a;
}

// A teacher whose norm scales differ channel by channel, so that pruning has a real choice.
engine::PlainConvUNet randomTeacher() {
  torch::manual_seed(5);
  engine::PlainConvUNet t(teacherArch());
  initialiseHe(t);
  torch::NoGradGuard ng;
  for (auto& p : t->named_parameters())
    if (p.key().find("norm.") != std::string::npos) p.value().uniform_(-2, 2);
  return t;
}

bool sameWeights(engine::PlainConvUNet& a, engine::PlainConvUNet& b) {
  auto pb = b->named_parameters();
  for (auto& p : a->named_parameters())
    if (!torch::equal(p.value(), pb[p.key()])) return false;
  return true;
}

}  // namespace

TEST_CASE("pruning keeps the shapes consistent, and pruning to the teacher's width reproduces it exactly",
          "[training][prune]") {
  auto teacher = randomTeacher();
  auto x = torch::randn({1, 1, 32, 32, 32});
  auto same = pruneFromTeacher(teacher, teacher->spec());
  {
    torch::NoGradGuard ng;
    auto a = teacher->forwardAll(x), b = same->forwardAll(x);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
  }
  for (int divisor : {2, 4}) {
    auto arch = teacher->spec().withWidthDivisor(divisor, 2);
    auto student = pruneFromTeacher(teacher, arch);
    CHECK(student->parameterCount() == arch.parameterCount());
    torch::NoGradGuard ng;
    auto heads = student->forwardAll(x);
    CHECK(heads[0].sizes() == std::vector<int64_t>{1, 3, 32, 32, 32});
    // Stage 0 keeps the channels of largest |gamma|, in their order.
    auto gamma = teacher->named_parameters()["encoder.0.0.norm.weight"];
    auto kept = std::get<0>(std::get<1>(gamma.abs().sort(0, true)).slice(0, 0, arch.features[0]).sort());
    CHECK(torch::equal(student->named_parameters()["encoder.0.0.norm.weight"], gamma.index_select(0, kept)));
    CHECK(torch::equal(student->named_parameters()["encoder.0.0.conv.weight"],
                       teacher->named_parameters()["encoder.0.0.conv.weight"].index_select(0, kept)));
    // The last head reads the kept channels of the last decoder conv.
    CHECK(student->named_parameters()["heads.1.weight"].size(1) == arch.features[0]);
  }
  auto deeper = teacher->spec();
  deeper.features.push_back(64);
  CHECK_THROWS(pruneFromTeacher(teacher, deeper));
}

TEST_CASE("feature KD compares a pruned student's decoder with the teacher's same channels, and trains it toward them",
          "[training][prune][loss]") {
  auto teacher = randomTeacher();
  auto x = torch::randn({2, 1, 32, 32, 32});
  torch::Tensor reference;
  std::vector<torch::Tensor> tFeatures;
  {
    torch::NoGradGuard ng;
    auto o = teacher->forwardWithFeatures(x);
    tFeatures = o.features;
    reference = teacher->forward(x);
    CHECK(torch::equal(o.heads[0], reference));  // the features cost the heads nothing
  }
  REQUIRE(tFeatures.size() == 2);
  CHECK(tFeatures[0].sizes() == std::vector<int64_t>{2, 8, 32, 32, 32});  // full resolution first
  CHECK(tFeatures[1].size(1) == 16);

  // At the teacher's own width the channels are all of them and the loss is exactly 0.
  auto all = decoderChannels(teacher, teacher->spec());
  CHECK(torch::equal(all[0], torch::arange(8)));
  CHECK(torch::equal(all[1], torch::arange(16)));
  auto same = pruneFromTeacher(teacher, teacher->spec());
  CHECK(featureDistillationLoss(same->forwardWithFeatures(x).features, tFeatures, all).item<double>() == 0);

  // A half-width student: its channels are the ones pruning kept for its last decoder conv.
  auto arch = teacher->spec().withWidthDivisor(2, 2);
  auto channels = decoderChannels(teacher, arch);
  REQUIRE(channels.size() == 2);
  CHECK(channels[0].numel() == arch.features[0]);
  CHECK(channels[1].numel() == arch.features[1]);
  const int lastConv = teacher->spec().convsPerStageDecoder[0] - 1;  // of the full-resolution stage (decoder.1)
  auto gamma = teacher->named_parameters()["decoder.1." + std::to_string(lastConv) + ".norm.weight"];
  auto kept = std::get<0>(std::get<1>(gamma.abs().sort(0, true)).slice(0, 0, arch.features[0]).sort());
  CHECK(torch::equal(channels[0], kept));

  // Feature KD alone moves the student's features toward the teacher's channels.
  auto student = pruneFromTeacher(teacher, arch);
  torch::optim::SGD opt(student->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  auto loss = [&] { return featureDistillationLoss(student->forwardWithFeatures(x).features, tFeatures, channels); };
  const double before = loss().item<double>();
  CHECK(before > 0);
  for (int i = 0; i < 20; ++i) {
    opt.zero_grad();
    loss().backward();
    opt.step();
  }
  CHECK(loss().item<double>() < 0.8 * before);
  CHECK_THROWS(featureDistillationLoss(tFeatures, tFeatures, {channels[0]}));
}

TEST_CASE("a run resumed after N steps and continued for M equals N + M steps in one go", "[training][resume]") {
  auto synth = synthesizer();
  auto teacher = randomTeacher();
  auto arch = teacher->spec().withWidthDivisor(2, 2);
  ScheduleOptions s;
  s.iterations = 6;
  s.warmupIterations = 2;
  s.learningRate = 0.01;
  s.emaDecay = 0.9;
  s.logEvery = 1000;
  s.seed = 3;
  StudentRecipe r{"w2"};
  r.gradient = 1;
  TempDir dir;
  auto run = [&](engine::PlainConvUNet& student, const std::string& work, int64_t stopAfter, bool resume) {
    std::vector<engine::PlainConvUNet> students{student};
    ScheduleOptions c = s;
    c.stopAfter = stopAfter;
    c.resume = resume;
    return distillStudents(teacher, students, {r}, synth, {16, 16, 16}, 2, c, DistillSettings{}, dir.path() / work,
                           torch::kCPU);
  };
  auto once = pruneFromTeacher(teacher, arch);
  auto whole = run(once, "once", 0, false);
  CHECK(whole.iterations == 6);

  auto split = pruneFromTeacher(teacher, arch);
  CHECK(run(split, "split", 4, true).iterations == 4);  // nothing to resume yet: starts at 0
  // A call stopped between checkpoints (at its deadline) has logged a step its state does not hold.
  std::ofstream(dir.path() / "split" / "curves.csv", std::ios::app) << "5,9.9,0.01,1,1,1\n";
  auto fresh = engine::PlainConvUNet(arch);  // a new process: everything comes from the state
  auto rest = run(fresh, "split", 0, true);
  CHECK(rest.iterations == 6);
  CHECK(rest.calls == 2);
  CHECK(sameWeights(once, fresh));
  for (auto& [k, v] : whole.ema[0]) CHECK(torch::equal(v, rest.ema[0].at(k)));
  // The curves of the two calls add up to those of the single run.
  auto lines = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) ++n;
    return n;
  };
  auto steps = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::string line, all;
    std::getline(in, line);
    while (std::getline(in, line)) all += line.substr(0, line.find(',')) + " ";
    return all;
  };
  CHECK(lines(dir.path() / "once" / "curves.csv") == 7);
  CHECK(lines(dir.path() / "split" / "curves.csv") == 7);
  CHECK(steps(dir.path() / "split" / "curves.csv") == "1 2 3 4 5 6 ");  // each step once, in order

  // Another plan is refused, naming what differs; a finished run cannot be extended.
  s.iterations = 7;
  CHECK_THROWS_WITH(run(fresh, "split", 0, true), Catch::Contains("--iterations 6"));
  s.extend = true;
  CHECK_THROWS_WITH(run(fresh, "split", 0, true), Catch::Contains("has not ended"));

  // --extend raises the planned total of a running one, from the step it is at, and records it.
  s.extend = false;
  s.iterations = 8;
  auto a = pruneFromTeacher(teacher, arch);
  run(a, "extended", 3, true);
  s.iterations = 12;
  CHECK_THROWS(run(a, "extended", 0, true));
  s.extend = true;
  auto extended = run(a, "extended", 2, true);
  CHECK(extended.iterations == 5);
  REQUIRE(extended.extensions.size() == 1);
  CHECK(extended.extensions[0] == "at step 3: 8 -> 12");
  CHECK(readRunState(dir.path() / "extended").plannedIterations == 12);
}

// The probe's step timing only waits and reads the clock: the run is the one training makes.
TEST_CASE("timing a step by phase leaves the run unchanged and names every phase", "[training][resume]") {
  auto synth = synthesizer();
  auto teacher = randomTeacher();
  auto arch = teacher->spec().withWidthDivisor(2, 2);
  ScheduleOptions s;
  s.iterations = 3;
  s.logEvery = 1000;
  StudentRecipe r{"w2"};
  TempDir dir;
  auto run = [&](const std::string& work, PhaseClock::Seconds* phases) {
    std::vector<engine::PlainConvUNet> students{pruneFromTeacher(teacher, arch)};
    ScheduleOptions c = s;
    c.stepPhases = phases;
    auto result = distillStudents(teacher, students, {r}, synth, {16, 16, 16}, 2, c, DistillSettings{},
                                  dir.path() / work, torch::kCPU);
    return std::make_pair(students[0], result);
  };
  PhaseClock::Seconds phases;
  auto [timed, timedRun] = run("timed", &phases);
  auto [plain, plainRun] = run("plain", nullptr);
  CHECK(sameWeights(timed, plain));
  for (auto& [k, v] : plainRun.ema[0]) CHECK(torch::equal(v, timedRun.ema[0].at(k)));
  std::vector<std::string> names;
  for (const auto& [phase, seconds] : phases) {
    names.push_back(phase);
    CHECK(seconds >= 0);
  }
  CHECK(names == std::vector<std::string>{"synthesis", "teacher", "student forward", "supervised loss", "KD loss",
                                          "gradient KD loss", "backward", "optimiser", "EMA"});

  // The teacher's own training names its phases the same way.
  PhaseClock::Seconds teacherPhases;
  s.stepPhases = &teacherPhases;
  auto net = randomTeacher();
  trainTeacher(net, synth, {16, 16, 16}, 2, s, dir.path() / "teacher", torch::kCPU);
  names.clear();
  for (const auto& [phase, seconds] : teacherPhases) names.push_back(phase);
  CHECK(names == std::vector<std::string>{"synthesis", "forward", "supervised loss", "backward", "optimiser", "EMA"});
  CHECK(describePhases({{"a", 0.0012}, {"b", 0.0030}}, 1e3) == "a 1.2, b 3.0; total 4");
}

TEST_CASE("a run with feature KD logs the term in its own column, and refuses a student without its channels",
          "[training][loss]") {
  auto synth = synthesizer();
  auto teacher = randomTeacher();
  auto arch = teacher->spec().withWidthDivisor(2, 2);
  ScheduleOptions s;
  s.iterations = 2;
  s.logEvery = 1000;
  StudentRecipe r{"w2"};
  r.feature = 1;
  TempDir dir;
  std::vector<engine::PlainConvUNet> students{pruneFromTeacher(teacher, arch)};
  CHECK_THROWS_WITH(distillStudents(teacher, students, {r}, synth, {16, 16, 16}, 2, s, DistillSettings{},
                                    dir.path() / "none", torch::kCPU),
                    Catch::Contains("decoder channels"));
  r.channels = decoderChannels(teacher, arch);
  distillStudents(teacher, students, {r}, synth, {16, 16, 16}, 2, s, DistillSettings{}, dir.path() / "run", torch::kCPU);
  std::ifstream in(dir.path() / "run" / "curves.csv");
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  CHECK(header == "iteration,seconds,lr,w2_loss,w2_supervised,w2_kd,w2_gradient,w2_feature");
  const double feature = std::stod(row.substr(row.rfind(',') + 1));
  CHECK(feature > 0);
  CHECK(std::isfinite(feature));
}

TEST_CASE("the learning rate warms up linearly, then decays to zero at the planned total", "[training][schedule]") {
  ScheduleOptions s;
  s.iterations = 100;
  s.warmupIterations = 10;
  s.learningRate = 0.01;
  CHECK(learningRateAt(s, 0) == Approx(0.001));
  CHECK(learningRateAt(s, 9) == Approx(0.01));
  CHECK(learningRateAt(s, 10) == Approx(0.01));
  CHECK(learningRateAt(s, 55) == Approx(0.01 * std::pow(0.5, 0.9)));
  CHECK(learningRateAt(s, 100) == 0);
  // A call's limits are not part of the schedule.
  ScheduleOptions limited = s;
  limited.stopAfter = 5;
  limited.timeBudgetSeconds = 1;
  CHECK(learningRateAt(limited, 55) == learningRateAt(s, 55));
}

TEST_CASE("every step draws a new batch", "[training][seed]") {
  std::set<uint64_t> seeds;
  for (uint64_t seed : {1, 2})
    for (int64_t step = 0; step < 5000; ++step) seeds.insert(batchSeed(seed, step));
  CHECK(seeds.size() == 10000);
  auto synth = synthesizer();
  auto a = synth.sample({16, 16, 16}, 1, batchSeed(1, 10)), b = synth.sample({16, 16, 16}, 1, batchSeed(1, 11));
  CHECK_FALSE(torch::equal(a.image, b.image));
}

TEST_CASE("clipGradNorm scales the gradients exactly as torch's clip_grad_norm_", "[training][schedule]") {
  torch::manual_seed(3);
  for (double scale : {0.01, 100.0}) {  // joint norm under and over the limit
    std::vector<torch::Tensor> mine, theirs;
    for (auto shape : {std::vector<int64_t>{4, 3, 3}, {7}, {2, 5}}) {
      auto grad = torch::randn(shape) * scale;
      for (auto* set : {&mine, &theirs}) {
        set->push_back(torch::zeros(shape, torch::requires_grad()));
        set->back().mutable_grad() = grad.clone();
      }
    }
    mine.push_back(torch::zeros({3}, torch::requires_grad()));  // no gradient: left out, as torch does
    theirs.push_back(torch::zeros({3}, torch::requires_grad()));
    clipGradNorm(mine, 12);
    const double norm = torch::nn::utils::clip_grad_norm_(theirs, 12);
    CHECK((scale > 1 ? norm > 12 : norm < 12));
    for (size_t i = 0; i + 1 < mine.size(); ++i) CHECK(torch::equal(mine[i].grad(), theirs[i].grad()));
    CHECK_FALSE(mine.back().grad().defined());
  }
}

TEST_CASE("the EMA follows d * ema + (1 - d) * weights, d warming up to its decay", "[training][ema]") {
  CHECK(Ema::decayAt(0.999, 0) == Approx(0.1));
  CHECK(Ema::decayAt(0.999, 90) == Approx(0.91));
  CHECK(Ema::decayAt(0.999, 100000) == 0.999);
  torch::manual_seed(2);
  engine::PlainConvUNet net(teacherArch());
  Ema ema(net, 0.9);
  auto w0 = ema.weights().at("heads.1.weight").clone();
  {
    torch::NoGradGuard ng;
    for (auto& p : net->parameters()) p.add_(1.0);
  }
  ema.update(net, 1000);
  CHECK(torch::allclose(ema.weights().at("heads.1.weight"), w0 + 0.1, 1e-6, 1e-6));
  ema.update(net, 1001);
  CHECK(torch::allclose(ema.weights().at("heads.1.weight"), w0 + 0.1 + 0.09, 1e-6, 1e-6));
  ema.update(net, 0);  // d = 0.1: nearly the weights
  CHECK(torch::allclose(ema.weights().at("heads.1.weight"), w0 + 0.19 + 0.9 * 0.81, 1e-6, 1e-6));
}

TEST_CASE("class-balanced KD is the mean over the teacher's classes of their mean KL", "[training][loss]") {
  torch::manual_seed(4);
  auto teacher = torch::randn({1, 3, 6, 6, 6}, torch::kDouble);
  teacher.select(1, 0).add_(3);                                   // class 0 nearly everywhere
  teacher.select(1, 2).slice(1, 0, 1).slice(2, 0, 2).add_(10);  // class 2 on a few voxels
  auto student = torch::randn({1, 3, 6, 6, 6}, torch::kDouble);
  CHECK(balancedKlDistillationLoss(teacher, teacher, 2).item<double>() == Approx(0).margin(1e-12));

  const double T = 2;
  auto logPs = torch::log_softmax(student / T, 1), logPt = torch::log_softmax(teacher / T, 1);
  auto kl = (logPt.exp() * (logPt - logPs)).sum(1).flatten();
  auto cls = teacher.argmax(1).flatten();
  double sum = 0;
  int classes = 0;
  for (int c = 0; c < 3; ++c) {
    auto mask = cls == c;
    if (mask.sum().item<int64_t>() == 0) continue;
    sum += kl.masked_select(mask).mean().item<double>();
    ++classes;
  }
  REQUIRE(classes >= 2);
  CHECK(balancedKlDistillationLoss(student, teacher, T).item<double>() == Approx(T * T * sum / classes).epsilon(1e-9));
  // With one class everywhere it is the plain KL.
  auto flat = torch::zeros({1, 3, 4, 4, 4}, torch::kDouble);
  flat.select(1, 1).fill_(5);
  auto s2 = torch::randn({1, 3, 4, 4, 4}, torch::kDouble);
  CHECK(balancedKlDistillationLoss(s2, flat, T).item<double>() ==
        Approx(klDistillationLoss(s2, flat, T).item<double>()).epsilon(1e-12));
}

TEST_CASE("the separable edge operator equals the 3D Sobel and Prewitt convolutions", "[training][loss]") {
  namespace F = torch::nn::functional;
  torch::manual_seed(6);
  auto p = torch::softmax(torch::randn({2, 3, 7, 9, 8}, torch::kDouble), 1);
  for (auto op : {EdgeOperator::Sobel, EdgeOperator::Prewitt}) {
    auto o = p.options();
    auto diff = torch::tensor({-1.0, 0.0, 1.0}, o);
    auto smooth = op == EdgeOperator::Sobel ? torch::tensor({1.0, 2.0, 1.0}, o) : torch::tensor({1.0, 1.0, 1.0}, o);
    auto k3 = [&](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {
      return (a.view({3, 1, 1}) * b.view({1, 3, 1}) * c.view({1, 1, 3})) / smooth.sum().pow(2);
    };
    auto kernels = torch::stack({k3(diff, smooth, smooth), k3(smooth, diff, smooth), k3(smooth, smooth, diff)});
    auto w = kernels.unsqueeze(1).repeat({3, 1, 1, 1, 1});
    auto g = F::conv3d(F::pad(p, F::PadFuncOptions({1, 1, 1, 1, 1, 1}).mode(torch::kReplicate)), w,
                       F::Conv3dFuncOptions().groups(3))
                 .view({2, 3, 3, 7, 9, 8});
    auto reference = (g.pow(2).sum(2) + 1e-12).sqrt();
    CHECK(torch::allclose(edgeMagnitude(p, op), reference, 1e-12, 1e-12));
  }
}

TEST_CASE("patches are cut from a volume normalised as a whole, and class-centred patches hold their class",
          "[training][synth]") {
  SynthOptions o;
  o.spatial = false;
  o.classCentredProbability = 0;
  auto synth = synthesizer(o);
  // The region is the foreground box plus 8 voxels: 42 x 40 x 40 (x, y, z). A 96^3 patch holds all
  // of it (the rest is padding), so its voxels have mean 0 and variance 1 there.
  for (uint64_t seed : {1, 2, 3}) {
    auto b = synth.sample({96, 96, 96}, 1, seed);
    const double n = 42.0 * 40 * 40;
    CHECK(b.image.sum().item<double>() / n == Approx(0).margin(1e-4));
    CHECK(b.image.pow(2).sum().item<double>() / n == Approx(1).epsilon(1e-3));
    CHECK((b.image != 0).sum().item<int64_t>() == int64_t(n));
  }
  // Class-centred: the voxel at the patch centre is always of a target class, the tiny box included.
  o.classCentredProbability = 1;
  o.spatial = true;
  auto centred = synthesizer(o);
  int box = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    auto t = centred.sample({8, 8, 8}, 1, seed).target[0];
    int64_t c = t[4][4][4].item<int64_t>();
    CHECK(c > 0);
    box += c == 2;
  }
  CHECK(box > 10);  // drawn uniformly over the two classes, not by volume (the box is 1/40 of the sphere)
}

TEST_CASE("validation Dice counts every class of the references and restores the network's weights",
          "[training][validation]") {
  auto ref = torch::zeros({4, 4, 4}, torch::kLong), pred = torch::zeros({4, 4, 4}, torch::kLong);
  ref.slice(0, 0, 2).fill_(1);   // 32 voxels of class 1
  pred.slice(0, 1, 3).fill_(1);  // 32 voxels, 16 overlapping
  ref[3][3][3] = 2;              // class 2 missed entirely
  auto r = diceOf({{pred, ref}}, 4);
  CHECK(r.dice[1] == Approx(0.5));
  CHECK(r.dice[2] == 0);
  CHECK(std::isnan(r.dice[3]));  // in no reference: not averaged
  CHECK(r.mean == Approx(0.25));

  auto synth = synthesizer();
  Validator v({synth.whole(0, Contrast::Prior, {1, 1, 1}, 7)}, "synth-t1");
  auto net = randomTeacher();
  std::vector<torch::Tensor> before;
  for (auto& p : net->parameters()) before.push_back(p.clone());
  Ema ema(net, 0.5);
  for (auto& w : ema.weights()) w.second.mul_(0.5);
  auto result = v.run(net, &ema.weights());
  CHECK(result.dice.size() == 3);
  size_t i = 0;
  for (auto& p : net->parameters()) CHECK(torch::equal(p, before[i++]));
}
