// segnode-distill train (teacher) and distill (students).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "common/Error.h"
#include "common/Sha256.h"
#include "engine/Model.h"
#include "engine/Nifti.h"
#include "engine/Segmenter.h"
#include "training/Commands.h"
#include "training/Data.h"
#include "training/Plan.h"
#include "training/Prune.h"
#include "training/Trainer.h"

namespace segnode::distill {
namespace fs = std::filesystem;

namespace {

// What train and distill share: the data, the schedule, where to write.
struct RunArgs {
  DataOptions data;
  training::ScheduleOptions schedule;
  std::optional<double> lr;
  std::string precision = "bf16", out, name, version;
  std::optional<int> batch;
  std::vector<int64_t> patch;
};

CLI::App* addRunCommand(CLI::App& app, const char* name, const char* what, RunArgs& a) {
  auto* sub = app.add_subcommand(name, what);
  sub->add_option("--out", a.out, "OUT/work: state and curves; OUT/NAME/VERSION: the bundle");
  addDataOptions(*sub, a.data);
  auto& s = a.schedule;
  const int big = 100000000;
  auto* g = sub->add_option_group("Schedule");
  g->add_option("--iterations", s.iterations, "planned total of the run")->check(CLI::Range(1, big));
  g->add_option("--lr", a.lr, "learning rate (default: 0.01 sgd, 0.001 adamw)")->check(CLI::Range(1e-7, 10.0));
  g->add_option("--lr-warmup", s.warmupIterations, "iterations of linear warm-up (within --iterations)")->check(CLI::Range(0, big));
  g->add_option("--optimizer", s.optimizer, "adamw runs are not resumable")->check(CLI::IsMember({"sgd", "adamw"}));
  g->add_option("--weight-decay", s.weightDecay)->check(CLI::Range(0.0, 1.0));
  g->add_option("--ema-decay", s.emaDecay, "EMA of the weights the bundle ships (0: the last)")->check(CLI::Range(0.0, 0.999999));
  g->add_option("--precision", a.precision, "autocast on CUDA")->check(CLI::IsMember({"bf16", "fp32"}));
  g->add_option("--seed", s.seed)->check(CLI::Range(0, 1 << 30));
  g->add_option("--batch", a.batch, "(default: the plan's for train, 2 for distill)")->check(CLI::Range(1, 256));
  g->add_option("--patch", a.patch, "X,Y,Z (default: the plan's or the teacher's)")->delimiter(',');
  g->add_option("--stop-after", s.stopAfter, "this call: stop after N iterations (0: no limit)")->check(CLI::Range(0, big));
  g->add_option("--time-budget", s.timeBudgetSeconds, "this call: stop once the program has run SECONDS, set-up included (0: no limit)")->check(CLI::Range(0.0, 1e7));
  auto* resume = g->add_flag("--resume", s.resume, "continue OUT/work exactly");
  g->add_flag("--extend", s.extend, "raise the planned total to --iterations (recorded)")->needs(resume);
  g->add_option("--validate-every", s.validateEvery, "validation with --val-labels (0: at the end of a call)")->check(CLI::Range(0, big));
  g->add_option("--checkpoint-every", s.checkpointEvery)->check(CLI::Range(0, big));
  g->add_option("--log-every", s.logEvery)->check(CLI::Range(1, 1000000));
  return sub;
}

training::ScheduleOptions scheduleFrom(const RunArgs& a) {
  training::ScheduleOptions s = a.schedule;
  if (s.warmupIterations > s.iterations) throw Error(ErrorCode::InvalidArgument, "--lr-warmup must be at most --iterations");
  s.learningRate = a.lr.value_or(s.optimizer == "adamw" ? 1e-3 : 1e-2);
  s.bf16 = a.precision == "bf16";
  return s;
}

// What the batches are drawn from (RunState::recipe), by content: the same files under another
// path (a device call unpacks them elsewhere) are the same recipe.
std::map<std::string, std::string> recipeOf(const DataOptions& d) {
  auto files = [](const std::vector<std::string>& paths) -> std::string {
    if (paths.empty()) return "none";
    Sha256 all;
    for (const auto& p : paths) {
      auto one = sha256File(p);
      all.update(one.data(), one.size());
    }
    return all.hexDigest();
  };
  std::ostringstream synthesis;
  synthesis << "phases " << (d.phases.empty() ? "all" : CLI::detail::join(d.phases)) << ", body blobs " << d.bodyBlobs
            << ", prior probability " << d.priorProbability << ", real probability "
            << (d.realProbability ? std::to_string(*d.realProbability) : "default");
  return {{"label_maps", files(d.labels)},
          {"images", files(d.images)},
          {"generation_table", d.table.empty() ? "none" : sha256File(d.table)},
          {"body_context", files(d.contextMaps)},
          {"synthesis", synthesis.str()}};
}

std::array<int64_t, 3> patchFrom(const RunArgs& a, const std::array<int64_t, 3>& def) {
  if (a.patch.empty()) return def;
  if (a.patch.size() != 3) throw Error(ErrorCode::InvalidArgument, "--patch wants X,Y,Z");
  return {a.patch[0], a.patch[1], a.patch[2]};
}

nlohmann::ordered_json provenanceOf(const RunArgs& a, const training::TrainResult& r, const training::ScheduleOptions& s) {
  nlohmann::ordered_json p;
  p["data"]["label_maps"] = CLI::detail::join(a.data.labels);
  if (!a.data.images.empty()) p["data"]["images"] = CLI::detail::join(a.data.images);
  if (!a.data.table.empty()) p["data"]["generation_table"] = a.data.table;
  if (!a.data.phases.empty()) p["data"]["contrast_phases"] = CLI::detail::join(a.data.phases);
  if (a.data.table.find("/ct/") != std::string::npos) p["data"]["body_blobs"] = a.data.bodyBlobs;
  if (!a.data.contextMaps.empty())
    p["data"]["body_context"] = CLI::detail::join(a.data.contextMaps) +
                                " (TotalSegmentator dataset masks, CC BY 4.0, Wasserthal et al. 2023)";
  p["training"]["iterations"] = r.iterations;
  p["training"]["planned_iterations"] = s.iterations;
  p["training"]["seconds"] = r.seconds;
  p["training"]["calls"] = r.calls;
  p["training"]["optimizer"] = s.optimizer;
  p["training"]["learning_rate"] = s.learningRate;
  p["training"]["schedule"] = "linear warm-up over " + std::to_string(s.warmupIterations) +
                              " iterations, then poly 0.9 to 0 at planned_iterations";
  p["training"]["ema_decay"] = s.emaDecay;
  p["training"]["weights"] = s.emaDecay > 0 ? "EMA" : "last";
  if (!r.extensions.empty()) p["training"]["schedule_extensions"] = r.extensions;
  p["training"]["data_seeds"] = "splitmix64(seed, step) for step 0.." + std::to_string(r.iterations - 1);
  p["training"]["precision"] = s.bf16 ? "bf16 autocast" : "fp32";
  p["training"]["seed"] = s.seed;
  p["training"]["tool"] = "segnode-distill";
  p["training"]["libtorch"] = TORCH_VERSION;
  return p;
}

// What a continued teacher started from, for its provenance: the bundle and the schedule that
// trained it (its own provenance keeps the rest).
std::string continuedFrom(const engine::BundleSpec& from) {
  std::string text = from.reference() + " (weights sha256 " + from.weightsSha256 + ")";
  const auto& p = from.provenance;
  if (p.contains("training") && p["training"].contains("iterations"))
    text += ", trained " + p["training"]["iterations"].dump() + " iterations";
  if (p.contains("data") && p["data"].contains("generation_table"))
    text += " on " + p["data"]["generation_table"].get<std::string>();
  return text;
}

// Starts `net` from a trained bundle of the same architecture (continued training).
void copyWeights(engine::PlainConvUNet& net, const engine::BundleSpec& from) {
  auto trained = training::loadEager(from, torch::kCPU);
  torch::NoGradGuard ng;
  auto src = trained->named_parameters();
  for (auto& p : net->named_parameters()) {
    auto* t = src.find(p.key());
    if (!t || t->sizes() != p.value().sizes())
      throw Error(ErrorCode::BadBundle, from.directory.string() + ": '" + p.key() + "' does not match the network to continue");
    p.value().copy_(*t);
  }
}

struct TrainArgs : RunArgs {
  std::string templateFile, plan, init;
  bool fp16 = false;
};

int train(const TrainArgs& args) {
  auto spec = engine::loadBundleTemplate(args.templateFile);
  auto plan = training::planFromYaml(args.plan);
  auto device = deviceFrom(args.data);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);

  // The bundle the teacher will be: the template's labels on the plan's network.
  spec.name = args.name;
  if (!engine::SemVer::parse(args.version, spec.version))
    throw Error(ErrorCode::InvalidArgument, "--version wants X.Y.Z");
  spec.architecture = plan.architecture(int(spec.labels.size()), spec.architecture.inChannels);
  spec.preprocessing.targetSpacing = plan.spacing;
  spec.inference.patchSize = plan.patchSize;
  if (plan.hasCt) {
    spec.preprocessing.clipLow = plan.ctClipLow, spec.preprocessing.clipHigh = plan.ctClipHigh;
    spec.preprocessing.mean = plan.ctMean, spec.preprocessing.std = plan.ctStd;
  }
  auto data = makeSynthesizer(args.data, spec, device);
  auto s = scheduleFrom(args);
  s.recipe = recipeOf(args.data);
  std::optional<engine::BundleSpec> init;  // a trained teacher to continue (a fine-tuning run)
  if (!args.init.empty()) {
    init = engine::loadBundleSpec(args.init);
    s.recipe["init"] = init->reference() + " " + init->weightsSha256;  // a resumed run keeps its start
  }
  auto patch = patchFrom(args, plan.patchSize);
  int batch = args.batch.value_or(plan.batchSize);

  torch::manual_seed(s.seed);
  engine::PlainConvUNet net(spec.architecture);
  training::initialiseHe(net);
  if (init) copyWeights(net, *init);
  fs::path out = args.out;
  std::fprintf(stderr, "teacher %s: %lld parameters, patch %lldx%lldx%lld, batch %d, %zu subjects, device %s\n",
               spec.name.c_str(), (long long)net->parameterCount(), (long long)patch[0], (long long)patch[1],
               (long long)patch[2], batch, data->subjects().size(), device.str().c_str());
  auto validator = makeValidator(args.data, spec, device);
  auto r = training::trainTeacher(net, *data, patch, batch, s, out / "work", device, validator.get());
  spec.created = isoNow();
  spec.provenance = provenanceOf(args, r, s);
  spec.provenance["training"]["final_loss"] = r.finalLoss[0];
  if (init) spec.provenance["training"]["continued_from"] = continuedFrom(*init);
  spec.metrics = {{"params", net->parameterCount()}};
  auto written = training::writeTrainedBundle(spec, r.ema[0], out / spec.name / spec.version.toString(),
                                              args.fp16 ? torch::kHalf : torch::kFloat);
  std::printf("%s\n", written.directory.c_str());
  return 0;
}

// A student's own description: what it segments (the teacher's first sentence) and where it
// comes from; the teacher's figures are the teacher's, not the student's (docs/models.md has both).
std::string studentDescription(const engine::BundleSpec& teacher, int divisor, bool reallocated) {
  auto end = teacher.description.find(". ");
  auto task = end == std::string::npos ? teacher.description : teacher.description.substr(0, end + 1);
  const std::string width = "1/" + std::to_string(divisor) + "-width";
  const std::string kind = reallocated ? " student with the " + width + " rule's parameters, reallocated over the stages,"
                                       : " " + width + " student";
  return task + kind + " distilled from " + teacher.reference() + " (provenance below; validation in docs/models.md).";
}

// A student's architecture: DESIGN §6's rule (features / divisor, at least minFeatures), or, with
// `perStage` ("16:24:40:56:64"), those widths: the same parameter budget spent differently over
// the stages (wider near full resolution, where boundaries are drawn, narrower deep down, where
// the parameters are). The budget holds: at most the rule's parameter count for that divisor, so
// a reallocated w4 is still >= 93.7 % smaller than the family's teacher. "rule" keeps the rule.
engine::ArchitectureSpec studentArchitecture(const engine::ArchitectureSpec& teacher, int divisor, int minFeatures,
                                             const std::string& perStage) {
  auto rule = teacher.withWidthDivisor(divisor, minFeatures);
  if (perStage == "rule") return rule;
  auto arch = teacher;
  arch.features.clear();
  std::stringstream in(perStage);
  for (std::string item; std::getline(in, item, ':');) {
    char* end = nullptr;
    long f = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || f < 1 || f > 4096)
      throw Error(ErrorCode::InvalidArgument, "--features-per-stage " + perStage + ": '" + item + "' is not a width (1-4096)");
    arch.features.push_back(int(f));
  }
  if (arch.stages() != teacher.stages())
    throw Error(ErrorCode::InvalidArgument, "--features-per-stage " + perStage + ": the teacher has " +
                                                std::to_string(teacher.stages()) + " stages");
  if (arch.parameterCount() > rule.parameterCount())
    throw Error(ErrorCode::InvalidArgument, "--features-per-stage " + perStage + ": " + std::to_string(arch.parameterCount()) +
                                                " parameters, over the 1/" + std::to_string(divisor) + " rule's (of this teacher) " +
                                                std::to_string(rule.parameterCount()));
  return arch;
}

// The width of a bundle against the first teacher of its family: 1 for a teacher, N for a 1/N
// student. A student distilled from a student (a teacher assistant) multiplies the two.
int widthDivisorOf(const engine::BundleSpec& spec) {
  const auto& p = spec.provenance;
  if (p.contains("distillation") && p["distillation"].contains("width_divisor")) return p["distillation"]["width_divisor"].get<int>();
  return 1;
}

// Seconds for one volume on this machine's CPU with random weights of the candidate's width.
double measureLatency(const engine::BundleSpec& teacher, int divisor, int minFeatures, const fs::path& input,
                      const fs::path& scratch) {
  engine::BundleSpec spec = teacher;
  spec.architecture = teacher.architecture.withWidthDivisor(divisor, minFeatures);
  spec.name = "latency-probe";
  spec.provenance = {{"untrained", true}};
  auto written = engine::writeRandomBundle(spec, scratch / ("w" + std::to_string(divisor)), 1);
  auto model = engine::SegmentationModel::load(written);
  engine::Volume v = engine::readNifti(input);
  c10::InferenceMode guard;
  engine::segment(*model, v);  // warm-up (TorchScript optimisation runs on the first calls)
  auto t0 = std::chrono::steady_clock::now();
  engine::segment(*model, v);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Samples per second of the whole family step (synthesis, teacher forward, every student) at each
// batch size of `list`, after a warm-up (cuDNN picks its kernels on the first calls). Prints
// `probe_best_batch=B` on stdout: the batch with the most samples per second. With synthesis
// threads, the same steps are also timed with one, side by side: what decides is the whole step
// (session 11's H200 made half session 9's iterations per second with eight threads, and its
// synthesis-only timing had called them faster). And the same steps with the host waiting for
// the device after each, as the loop did before 2026-12-02, for the ratio of that change. And
// where the time goes: synthesis by stage, and the step by phase (training/PhaseClock.h).
int probeBatches(const std::vector<int>& batches, engine::PlainConvUNet& teacher, std::vector<engine::PlainConvUNet>& students,
                 const std::vector<training::StudentRecipe>& recipes, const training::Synthesizer& data,
                 const std::array<int64_t, 3>& patch, const training::ScheduleOptions& s,
                 const training::DistillSettings& w, const fs::path& out, torch::Device device) {
  constexpr int kTimedSteps = 12;  // after 3 warm-up steps
  auto stepSeconds = [&](const training::Synthesizer& synth, int batch, const std::string& dirName,
                         bool readEveryStep = false, training::PhaseClock::Seconds* phases = nullptr) {
    training::ScheduleOptions p = s;
    p.resume = false, p.stopAfter = 3, p.timeBudgetSeconds = 0, p.checkpointEvery = 0, p.logEvery = 1000000;
    p.readEveryStep = readEveryStep;
    auto warm = training::distillStudents(teacher, students, recipes, synth, patch, batch, p, w, out / dirName, device);
    p.resume = true, p.stopAfter = kTimedSteps, p.stepPhases = phases;
    auto timed = training::distillStudents(teacher, students, recipes, synth, patch, batch, p, w, out / dirName, device);
    return (timed.seconds - warm.seconds) / double(p.stopAfter);
  };
  int best = 0;
  double bestRate = 0;
  for (int batch : batches) {
    const std::string dir = "probe-batch-" + std::to_string(batch);
    const double step = stepSeconds(data, batch, dir), rate = batch / std::max(1e-9, step);
    auto shared = training::measureSharedStepCost(teacher, data, patch, batch, s, device);
    std::fprintf(stderr,
                 "probe: batch %d: %.2f samples/s (%.2f it/s); per iteration %.0f ms: synthesis %.0f, teacher %.0f, "
                 "%zu students %.0f\n",
                 batch, rate, rate / batch, 1e3 * step, 1e3 * shared.synthesis, 1e3 * shared.teacher, students.size(),
                 1e3 * (step - shared.synthesis - shared.teacher));
    if (data.threads() > 1) {
      const double serialStep = stepSeconds(data.withThreads(1), batch, dir + "-serial");
      std::fprintf(stderr, "probe: batch %d: synthesis %.0f ms on %d threads, %.0f ms on one\n", batch,
                   1e3 * shared.synthesis, data.threads(), 1e3 * shared.serialSynthesis);
      std::fprintf(stderr, "probe: batch %d: step %.0f ms on %d synthesis threads, %.0f ms on one\n", batch, 1e3 * step,
                   data.threads(), 1e3 * serialStep);
    }
    std::fprintf(stderr, "probe: batch %d: synthesis by stage, one thread waiting after each (ms a batch): %s\n", batch,
                 training::describePhases(shared.synthesisStages, 1e3).c_str());
    // The step by phase: what a faster step would have to shorten (the device waited for after
    // each phase, so nothing overlaps as in training, and the total exceeds the step).
    training::PhaseClock::Seconds phases;
    stepSeconds(data, batch, dir + "-phases", false, &phases);
    std::fprintf(stderr, "probe: batch %d: a step by phase, the device waited for after each (ms): %s\n", batch,
                 training::describePhases(phases, 1e3 / kTimedSteps).c_str());
    const double waiting = stepSeconds(data, batch, dir + "-waiting", /*readEveryStep=*/true);
    std::fprintf(stderr, "probe: batch %d: step %.0f ms, %.0f ms with the host waiting for the device every step\n",
                 batch, 1e3 * step, 1e3 * waiting);
    if (rate > bestRate) best = batch, bestRate = rate;
  }
  std::printf("probe_best_batch=%d\n", best);
  return 0;
}

struct DistillArgs : RunArgs {
  std::string teacher, latencyInput, edges = "sobel";
  std::vector<int> divisors{2, 4, 8}, probeBatches;
  int minFeatures = 4, threads = int(std::thread::hardware_concurrency());
  std::optional<double> maxParams, latencyBudget;
  bool dryRun = false;
  training::DistillSettings w;
  std::vector<std::string> inits{"teacher"}, names, balance{"inverse-frequency"}, stageFeatures{"rule"};
  std::vector<double> kd{1}, gradient{10}, supervised{1}, feature{0};
};

// One student per --divisors entry; every per-student option is one value for all or a list.
template <class T>
std::vector<T> perStudent(const char* option, std::vector<T> v, size_t n) {
  if (v.size() == 1) v.assign(n, v[0]);
  if (v.size() != n)
    throw Error(ErrorCode::InvalidArgument, std::string(option) + ": give one value, or one per --divisors entry (" + std::to_string(n) + ")");
  return v;
}

int distill(const DistillArgs& args) {
  auto teacherSpec = engine::loadBundleSpec(args.teacher);
  const int minFeatures = args.minFeatures;
  std::vector<int> divisors = args.divisors;

  // Self-configuring choice: the largest student under a parameter or latency budget.
  if (args.maxParams || args.latencyBudget) {
    std::sort(divisors.begin(), divisors.end());
    int chosen = 0;
    for (int d : divisors) {
      auto arch = teacherSpec.architecture.withWidthDivisor(d, minFeatures);
      bool ok = true;
      if (args.maxParams) ok &= double(arch.parameterCount()) <= *args.maxParams;
      if (ok && args.latencyBudget) {
        torch::set_num_threads(args.threads);
        double sec = measureLatency(teacherSpec, d, minFeatures, args.latencyInput, fs::path(args.out) / "latency");
        std::fprintf(stderr, "width 1/%d: %lld parameters, %.2f s per volume on this CPU\n", d,
                     (long long)arch.parameterCount(), sec);
        ok &= sec <= *args.latencyBudget;
      }
      if (ok) {
        chosen = d;
        break;
      }
    }
    if (!chosen) throw Error(ErrorCode::InvalidArgument, "no student width in --divisors fits the budget");
    std::fprintf(stderr, "chosen: width 1/%d\n", chosen);
    divisors = {chosen};
  }
  if (args.dryRun) {
    for (int d : divisors) std::printf("%d\n", d);
    return 0;
  }
  if (args.out.empty()) throw Error(ErrorCode::InvalidArgument, "option --out is required");
  auto device = deviceFrom(args.data);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  auto teacher = training::loadEager(teacherSpec, device);
  auto data = makeSynthesizer(args.data, teacherSpec, device);
  auto s = scheduleFrom(args);
  s.recipe = recipeOf(args.data);
  s.recipe["teacher"] = teacherSpec.reference() + " " + teacherSpec.weightsSha256;
  auto patch = patchFrom(args, teacherSpec.inference.patchSize);
  int batch = args.batch.value_or(2);
  training::DistillSettings w = args.w;
  const std::string& edges = args.edges;
  w.edges = edges == "sobel" ? training::EdgeOperator::Sobel : training::EdgeOperator::Prewitt;

  const size_t n = divisors.size();
  auto inits = perStudent("--init", args.inits, n), balance = perStudent("--kd-balance", args.balance, n),
       stageFeatures = perStudent("--features-per-stage", args.stageFeatures, n);
  auto kds = perStudent("--kd-weight", args.kd, n), grads = perStudent("--gradient-weight", args.gradient, n),
       sups = perStudent("--supervised-weight", args.supervised, n), feats = perStudent("--feature-weight", args.feature, n);
  std::string base = teacherSpec.name;
  if (auto pos = base.rfind("-teacher"); pos != std::string::npos) base = base.substr(0, pos);
  std::vector<std::string> names;
  for (int d : divisors) names.push_back(base + "-student-w" + std::to_string(d));
  if (!args.names.empty()) names = perStudent("--names", args.names, n);
  if (!args.name.empty() && n == 1) names = {args.name};

  torch::manual_seed(s.seed);
  const int teacherWidth = widthDivisorOf(teacherSpec);  // > 1: the teacher is itself a student (an assistant)
  std::vector<engine::PlainConvUNet> students;
  std::vector<engine::BundleSpec> specs;
  std::vector<training::StudentRecipe> recipes;
  for (size_t i = 0; i < n; ++i) {
    engine::BundleSpec spec = teacherSpec;
    spec.architecture = studentArchitecture(teacherSpec.architecture, divisors[i], minFeatures, stageFeatures[i]);
    spec.name = names[i];
    spec.description = studentDescription(teacherSpec, divisors[i] * teacherWidth, stageFeatures[i] != "rule");
    if (!args.version.empty() && !engine::SemVer::parse(args.version, spec.version))
      throw Error(ErrorCode::InvalidArgument, "--version wants X.Y.Z");
    if (inits[i] == "teacher") {
      students.push_back(training::pruneFromTeacher(teacher, spec.architecture));
    } else {
      students.emplace_back(spec.architecture);
      training::initialiseHe(students.back());
    }
    recipes.push_back({names[i], sups[i], kds[i], grads[i], balance[i] == "inverse-frequency", feats[i], {}});
    if (feats[i] > 0) recipes.back().channels = training::decoderChannels(teacher, spec.architecture);
    std::fprintf(stderr, "student %s: %lld parameters (teacher %lld), init %s, kd %g (%s), gradient %g, feature %g\n",
                 spec.name.c_str(), (long long)students.back()->parameterCount(), (long long)teacher->parameterCount(),
                 inits[i].c_str(), recipes.back().kd, balance[i].c_str(), recipes.back().gradient, recipes.back().feature);
    specs.push_back(spec);
  }
  fs::path out = args.out;
  if (!args.probeBatches.empty()) return probeBatches(args.probeBatches, teacher, students, recipes, *data, patch, s, w, out, device);

  auto validator = makeValidator(args.data, teacherSpec, device);
  auto r = training::distillStudents(teacher, students, recipes, *data, patch, batch, s, w, out / "work", device,
                                     validator.get());
  for (size_t i = 0; i < students.size(); ++i) {
    auto& spec = specs[i];
    spec.created = isoNow();
    spec.provenance = provenanceOf(args, r, s);
    spec.provenance["training"]["final_loss"] = r.finalLoss[i];
    spec.provenance["training"]["batch"] = batch;
    spec.provenance["teacher"] = teacherSpec.reference();
    auto& d = spec.provenance["distillation"];
    d["init"] = inits[i] == "teacher" ? "teacher, pruned by channel importance (|InstanceNorm gamma|; L1 of upsampling filters)"
                                      : "scratch (He)";
    d["width_divisor"] = divisors[i] * teacherWidth;  // against the family's teacher
    if (teacherWidth > 1) d["width_divisor_of_teacher"] = divisors[i];
    d["min_features"] = minFeatures;
    if (stageFeatures[i] != "rule") d["features_per_stage"] = "reallocated within the 1/" + std::to_string(divisors[i] * teacherWidth) + " rule's parameters";
    d["supervised_weight"] = recipes[i].supervised;
    d["kd_weight"] = recipes[i].kd;
    d["kd_balance"] = balance[i];
    d["temperature"] = w.temperature;
    d["gradient_weight"] = recipes[i].gradient;
    d["edge_operator"] = edges;
    d["edge_weight"] = w.edgeWeight;
    d["kd_ramp_fraction"] = w.kdRampFraction;
    if (recipes[i].feature > 0) d["feature_weight"] = recipes[i].feature;  // against the teacher's pruned channels
    if (!r.validation.empty()) {
      spec.provenance["validation_during_training"]["group"] = validator->group();
      spec.provenance["validation_during_training"]["iteration"] = r.iterations;
      spec.provenance["validation_during_training"]["mean_dice"] = r.validation[i].mean;
    }
    spec.metrics = {{"params", students[i]->parameterCount()}};
    auto written = training::writeTrainedBundle(spec, r.ema[i], out / spec.name / spec.version.toString(), torch::kFloat);
    std::printf("%s\n", written.directory.c_str());
  }
  return 0;
}

void addDistill(CLI::App& app) {
  auto a = std::make_shared<DistillArgs>();
  auto* sub = addRunCommand(app, "distill", "train students (features / 2^t) from a teacher bundle, together on the same batches", *a);
  sub->add_option("--teacher", a->teacher, "the teacher bundle's folder")->required();
  sub->add_option("--divisors", a->divisors, "one student per width divisor")->delimiter(',')->check(CLI::Range(1, 1024));
  sub->add_option("--min-features", a->minFeatures, "floor of the divided widths")->check(CLI::Range(1, 1024));
  sub->add_option("--name", a->name, "the student's name, with one divisor");
  sub->add_option("--version", a->version, "X.Y.Z (default: the teacher's)");
  auto* pick = sub->add_option_group("Choice of one width", "the largest student under a budget, from --divisors");
  pick->add_option("--max-params", a->maxParams, "at most this many parameters");
  pick->add_option("--latency-budget", a->latencyBudget, "at most this many seconds per volume on this CPU")
      ->check(CLI::Range(0.0, 1e6))
      ->needs(pick->add_option("--latency-input", a->latencyInput, "the volume to time"))
      ->needs(sub->get_option("--out"));
  pick->add_option("--threads", a->threads, "CPU threads for the timing")->check(CLI::Range(1, 1024));
  pick->add_flag("--dry-run", a->dryRun, "print the chosen divisors and stop");
  auto* each = sub->add_option_group("Per student", "one value, or one per --divisors entry");
  each->add_option("--names", a->names, "bundle names (default: TEACHER-student-wD)")->delimiter(',');
  each->add_option("--features-per-stage", a->stageFeatures,
                   "widths per stage, as 16:24:40:56:64 (at most the divisor rule's parameters), or rule: features / divisor")
      ->delimiter(',');
  each->add_option("--init", a->inits, "start from the pruned teacher or from scratch")->delimiter(',')->check(CLI::IsMember({"teacher", "scratch"}));
  const auto weight = CLI::Range(0.0, std::numeric_limits<double>::infinity());
  each->add_option("--kd-weight", a->kd, "weight of the distillation loss")->delimiter(',')->check(weight);
  each->add_option("--gradient-weight", a->gradient, "weight of the edge (gradient) loss")->delimiter(',')->check(weight);
  each->add_option("--supervised-weight", a->supervised, "weight of the Dice + CE loss")->delimiter(',')->check(weight);
  each->add_option("--feature-weight", a->feature, "weight of decoder-feature distillation against the teacher's same (pruned) channels")
      ->delimiter(',')->check(weight);
  each->add_option("--kd-balance", a->balance, "KL weighting by teacher class")->delimiter(',')->check(CLI::IsMember({"inverse-frequency", "none"}));
  auto* all = sub->add_option_group("All students");
  all->add_option("--temperature", a->w.temperature, "of the distillation softmax")->check(CLI::Range(0.1, 100.0));
  all->add_option("--edge-operator", a->edges)->check(CLI::IsMember({"sobel", "prewitt"}));
  all->add_option("--edge-weight", a->w.edgeWeight, "weight of edge voxels in the gradient loss")->check(CLI::Range(0.0, 1e6));
  all->add_option("--kd-ramp", a->w.kdRampFraction, "KD terms ramp from 0 over this part of the total")->check(CLI::Range(0.0, 1.0));
  all->add_option("--probe-batches", a->probeBatches, "measure samples/s per batch size, print probe_best_batch=B, train nothing")
      ->delimiter(',')->check(CLI::Range(1, 256));
  sub->callback([a] { distill(*a); });
}

}  // namespace

void addTrain(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub = addRunCommand(app, "train", "train the teacher on synthetic data, write its bundle (EMA weights) under OUT/NAME/VERSION", *a);
  sub->add_option("--template", a->templateFile, "bundle template T.yaml (labels, preprocessing)")->required();
  sub->add_option("--plan", a->plan, "plan YAML (segnode-distill plan)")->required();
  sub->add_option("--name", a->name, "bundle name")->required();
  a->version = "1.0.0";
  sub->add_option("--version", a->version, "X.Y.Z");
  sub->add_option("--init", a->init, "continue from this trained bundle of the same network");
  sub->add_flag("--fp16", a->fp16, "store the weights as float16");
  for (const char* option : {"--out", "--labels"}) sub->get_option(option)->required();
  sub->callback([a] { train(*a); });
  addDistill(app);
}

}  // namespace segnode::distill
