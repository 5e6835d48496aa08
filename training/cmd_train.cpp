// segnode-distill train (teacher) and distill (students).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "common/Error.h"
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

const std::set<std::string> kScheduleOptions{"--iterations", "--lr-warmup", "--stop-after", "--time-budget",
                                             "--optimizer", "--lr", "--weight-decay", "--precision", "--seed",
                                             "--batch", "--patch", "--log-every", "--checkpoint-every",
                                             "--validate-every", "--ema-decay", "--out", "--name", "--version"};

training::ScheduleOptions scheduleFrom(const cli::Args& a) {
  training::ScheduleOptions s;
  s.iterations = a.intValue("--iterations", 1000, 1, 100000000);
  s.warmupIterations = a.intValue("--lr-warmup", 0, 0, s.iterations);
  s.stopAfter = a.intValue("--stop-after", 0, 0, 100000000);
  s.timeBudgetSeconds = a.doubleValue("--time-budget", 0, 0, 1e7);
  s.optimizer = a.value("--optimizer").value_or("sgd");
  s.learningRate = a.doubleValue("--lr", s.optimizer == "adamw" ? 1e-3 : 1e-2, 1e-7, 10);
  s.weightDecay = a.doubleValue("--weight-decay", 3e-5, 0, 1);
  std::string p = a.value("--precision").value_or("bf16");
  if (p != "bf16" && p != "fp32") throw Error(ErrorCode::InvalidArgument, "--precision must be bf16 or fp32");
  s.bf16 = p == "bf16";
  s.seed = uint64_t(a.intValue("--seed", 1, 0, 1 << 30));
  s.logEvery = a.intValue("--log-every", 50, 1, 1000000);
  s.checkpointEvery = a.intValue("--checkpoint-every", 1000, 0, 100000000);
  s.validateEvery = a.intValue("--validate-every", 0, 0, 100000000);
  s.emaDecay = a.doubleValue("--ema-decay", 0.999, 0, 0.999999);
  s.resume = a.flag("--resume");
  s.extend = a.flag("--extend");
  if (s.extend && !s.resume) throw Error(ErrorCode::InvalidArgument, "--extend continues a run: give --resume too");
  return s;
}

std::array<int64_t, 3> patchFrom(const cli::Args& a, const std::array<int64_t, 3>& def) {
  auto v = a.value("--patch");
  if (!v) return def;
  auto parts = cli::splitList(*v);
  if (parts.size() != 3) throw Error(ErrorCode::InvalidArgument, "--patch wants X,Y,Z");
  return {std::stoll(parts[0]), std::stoll(parts[1]), std::stoll(parts[2])};
}

nlohmann::ordered_json provenanceOf(const cli::Args& a, const training::TrainResult& r, const training::ScheduleOptions& s) {
  nlohmann::ordered_json p;
  p["data"]["label_maps"] = a.required("--labels");
  if (auto i = a.value("--images")) p["data"]["images"] = *i;
  if (auto t = a.value("--table")) p["data"]["generation_table"] = *t;
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

}  // namespace

int runTrain(const ArgList& argv) {
  auto valued = kDataOptions;
  valued.insert(kScheduleOptions.begin(), kScheduleOptions.end());
  valued.insert({"--template", "--plan", "--init"});
  cli::Args args(argv, {"--resume", "--extend", "--fp16"}, valued);
  auto spec = engine::loadBundleTemplate(args.required("--template"));
  auto plan = training::planFromYaml(args.required("--plan"));
  auto device = deviceFrom(args);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);

  // The bundle the teacher will be: the template's labels on the plan's network.
  spec.name = args.required("--name");
  if (!engine::SemVer::parse(args.value("--version").value_or("1.0.0"), spec.version))
    throw Error(ErrorCode::InvalidArgument, "--version wants X.Y.Z");
  spec.architecture = plan.architecture(int(spec.labels.size()), spec.architecture.inChannels);
  spec.preprocessing.targetSpacing = plan.spacing;
  spec.inference.patchSize = plan.patchSize;
  if (plan.hasCt) {
    spec.preprocessing.clipLow = plan.ctClipLow, spec.preprocessing.clipHigh = plan.ctClipHigh;
    spec.preprocessing.mean = plan.ctMean, spec.preprocessing.std = plan.ctStd;
  }
  auto data = makeSynthesizer(args, spec, device);
  auto s = scheduleFrom(args);
  auto patch = patchFrom(args, plan.patchSize);
  int batch = args.intValue("--batch", plan.batchSize, 1, 256);

  torch::manual_seed(s.seed);
  engine::PlainConvUNet net(spec.architecture);
  training::initialiseHe(net);
  if (auto init = args.value("--init")) copyWeights(net, engine::loadBundleSpec(*init));  // continue a trained teacher
  fs::path out = args.required("--out");
  std::fprintf(stderr, "teacher %s: %lld parameters, patch %lldx%lldx%lld, batch %d, %zu subjects, device %s\n",
               spec.name.c_str(), (long long)net->parameterCount(), (long long)patch[0], (long long)patch[1],
               (long long)patch[2], batch, data->subjects().size(), device.str().c_str());
  auto validator = makeValidator(args, spec, device);
  auto r = training::trainTeacher(net, *data, patch, batch, s, out / "work", device, validator.get());
  spec.created = isoNow();
  spec.provenance = provenanceOf(args, r, s);
  spec.provenance["training"]["final_loss"] = r.finalLoss[0];
  spec.metrics = {{"params", net->parameterCount()}};
  auto written = training::writeTrainedBundle(spec, r.ema[0], out / spec.name / spec.version.toString(),
                                              args.flag("--fp16") ? torch::kHalf : torch::kFloat);
  std::printf("%s\n", written.directory.c_str());
  return 0;
}

namespace {

// Seconds for one volume on this machine's CPU with random weights of the candidate's width.
// A student's own description: what it segments (the teacher's first sentence) and where it
// comes from; the teacher's figures are the teacher's, not the student's (docs/models.md has both).
std::string studentDescription(const engine::BundleSpec& teacher, int divisor) {
  auto end = teacher.description.find(". ");
  auto task = end == std::string::npos ? teacher.description : teacher.description.substr(0, end + 1);
  return task + " 1/" + std::to_string(divisor) + "-width student distilled from " + teacher.reference() +
         " (provenance below; validation in docs/models.md).";
}

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
// `probe_best_batch=B` on stdout: the batch with the most samples per second.
int probeBatches(const std::string& list, engine::PlainConvUNet& teacher, std::vector<engine::PlainConvUNet>& students,
                 const std::vector<training::StudentRecipe>& recipes, const training::Synthesizer& data,
                 const std::array<int64_t, 3>& patch, const training::ScheduleOptions& s,
                 const training::DistillSettings& w, const fs::path& out, torch::Device device) {
  int best = 0;
  double bestRate = 0;
  for (const auto& text : cli::splitList(list)) {
    int batch = std::stoi(text);
    training::ScheduleOptions p = s;
    p.resume = false, p.stopAfter = 3, p.timeBudgetSeconds = 0, p.checkpointEvery = 0, p.logEvery = 1000000;
    fs::path dir = out / ("probe-batch-" + text);
    auto warm = training::distillStudents(teacher, students, recipes, data, patch, batch, p, w, dir, device);
    p.resume = true, p.stopAfter = 12;
    auto timed = training::distillStudents(teacher, students, recipes, data, patch, batch, p, w, dir, device);
    const double step = (timed.seconds - warm.seconds) / double(p.stopAfter), rate = batch / std::max(1e-9, step);
    auto shared = training::measureSharedStepCost(teacher, data, patch, batch, s, device);
    std::fprintf(stderr,
                 "probe: batch %d: %.2f samples/s (%.2f it/s); per iteration %.0f ms: synthesis %.0f, teacher %.0f, "
                 "%zu students %.0f\n",
                 batch, rate, rate / batch, 1e3 * step, 1e3 * shared.synthesis, 1e3 * shared.teacher, students.size(),
                 1e3 * (step - shared.synthesis - shared.teacher));
    if (rate > bestRate) best = batch, bestRate = rate;
  }
  std::printf("probe_best_batch=%d\n", best);
  return 0;
}

}  // namespace

int runDistill(const ArgList& argv) {
  auto valued = kDataOptions;
  valued.insert(kScheduleOptions.begin(), kScheduleOptions.end());
  valued.insert({"--teacher", "--divisors", "--min-features", "--max-params", "--latency-budget", "--latency-input",
                 "--kd-weight", "--gradient-weight", "--supervised-weight", "--kd-balance", "--temperature",
                 "--edge-operator", "--edge-weight", "--kd-ramp", "--threads", "--init", "--names", "--probe-batches"});
  cli::Args args(argv, {"--resume", "--extend", "--dry-run"}, valued);
  auto teacherSpec = engine::loadBundleSpec(args.required("--teacher"));
  const int minFeatures = args.intValue("--min-features", 4, 1, 1024);
  std::vector<int> divisors;
  for (auto& d : cli::splitList(args.value("--divisors").value_or("2,4,8"))) divisors.push_back(std::stoi(d));

  // Self-configuring choice: the largest student under a parameter or latency budget.
  if (args.value("--max-params") || args.value("--latency-budget")) {
    std::sort(divisors.begin(), divisors.end());
    int chosen = 0;
    for (int d : divisors) {
      auto arch = teacherSpec.architecture.withWidthDivisor(d, minFeatures);
      bool ok = true;
      if (auto mp = args.value("--max-params")) ok &= double(arch.parameterCount()) <= std::stod(*mp);
      if (ok && args.value("--latency-budget")) {
        torch::set_num_threads(args.intValue("--threads", int(std::thread::hardware_concurrency()), 1, 1024));
        double sec = measureLatency(teacherSpec, d, minFeatures, args.required("--latency-input"),
                                    fs::path(args.required("--out")) / "latency");
        std::fprintf(stderr, "width 1/%d: %lld parameters, %.2f s per volume on this CPU\n", d,
                     (long long)arch.parameterCount(), sec);
        ok &= sec <= args.doubleValue("--latency-budget", 0, 0, 1e6);
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
  if (args.flag("--dry-run")) {
    for (int d : divisors) std::printf("%d\n", d);
    return 0;
  }
  auto device = deviceFrom(args);
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
  auto teacher = training::loadEager(teacherSpec, device);
  auto data = makeSynthesizer(args, teacherSpec, device);
  auto s = scheduleFrom(args);
  auto patch = patchFrom(args, teacherSpec.inference.patchSize);
  int batch = args.intValue("--batch", 2, 1, 256);

  training::DistillSettings w;
  w.temperature = args.doubleValue("--temperature", 2, 0.1, 100);
  w.edgeWeight = args.doubleValue("--edge-weight", 4, 0, 1e6);
  w.kdRampFraction = args.doubleValue("--kd-ramp", 0, 0, 1);
  std::string edges = args.value("--edge-operator").value_or("sobel");
  if (edges != "sobel" && edges != "prewitt") throw Error(ErrorCode::InvalidArgument, "--edge-operator sobel|prewitt");
  w.edges = edges == "sobel" ? training::EdgeOperator::Sobel : training::EdgeOperator::Prewitt;

  // One student per --divisors entry; every per-student option is one value for all or a list.
  const size_t n = divisors.size();
  auto perStudent = [&](const std::string& option, const std::string& def) {
    auto v = cli::splitList(args.value(option).value_or(def));
    if (v.size() == 1) v.assign(n, v[0]);
    if (v.size() != n)
      throw Error(ErrorCode::InvalidArgument, option + ": give one value, or one per --divisors entry (" + std::to_string(n) + ")");
    return v;
  };
  auto number = [&](const std::string& option, const std::string& text) {
    try {
      size_t used = 0;
      double d = std::stod(text, &used);
      if (used == text.size() && d >= 0) return d;
    } catch (const std::exception&) {
    }
    throw Error(ErrorCode::InvalidArgument, option + ": '" + text + "' is not a number >= 0");
  };
  auto inits = perStudent("--init", "teacher"), kds = perStudent("--kd-weight", "1"),
       grads = perStudent("--gradient-weight", "10"), sups = perStudent("--supervised-weight", "1"),
       balance = perStudent("--kd-balance", "inverse-frequency");
  std::string base = teacherSpec.name;
  if (auto pos = base.rfind("-teacher"); pos != std::string::npos) base = base.substr(0, pos);
  std::vector<std::string> names;
  for (int d : divisors) names.push_back(base + "-student-w" + std::to_string(d));
  if (auto v = args.value("--names")) names = perStudent("--names", *v);
  if (auto v = args.value("--name"); v && n == 1) names = {*v};

  torch::manual_seed(s.seed);
  std::vector<engine::PlainConvUNet> students;
  std::vector<engine::BundleSpec> specs;
  std::vector<training::StudentRecipe> recipes;
  for (size_t i = 0; i < n; ++i) {
    engine::BundleSpec spec = teacherSpec;
    spec.architecture = teacherSpec.architecture.withWidthDivisor(divisors[i], minFeatures);
    spec.name = names[i];
    spec.description = studentDescription(teacherSpec, divisors[i]);
    if (auto v = args.value("--version"); v && !engine::SemVer::parse(*v, spec.version))
      throw Error(ErrorCode::InvalidArgument, "--version wants X.Y.Z");
    if (inits[i] == "teacher") {
      students.push_back(training::pruneFromTeacher(teacher, spec.architecture));
    } else if (inits[i] == "scratch") {
      students.emplace_back(spec.architecture);
      training::initialiseHe(students.back());
    } else {
      throw Error(ErrorCode::InvalidArgument, "--init must be teacher or scratch, not " + inits[i]);
    }
    if (balance[i] != "inverse-frequency" && balance[i] != "none")
      throw Error(ErrorCode::InvalidArgument, "--kd-balance must be inverse-frequency or none");
    recipes.push_back({names[i], number("--supervised-weight", sups[i]), number("--kd-weight", kds[i]),
                       number("--gradient-weight", grads[i]), balance[i] == "inverse-frequency"});
    std::fprintf(stderr, "student %s: %lld parameters (teacher %lld), init %s, kd %g (%s), gradient %g\n",
                 spec.name.c_str(), (long long)students.back()->parameterCount(), (long long)teacher->parameterCount(),
                 inits[i].c_str(), recipes.back().kd, balance[i].c_str(), recipes.back().gradient);
    specs.push_back(spec);
  }
  fs::path out = args.required("--out");
  if (auto probe = args.value("--probe-batches")) return probeBatches(*probe, teacher, students, recipes, *data, patch, s, w, out, device);

  auto validator = makeValidator(args, teacherSpec, device);
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
    d["width_divisor"] = divisors[i];
    d["min_features"] = minFeatures;
    d["supervised_weight"] = recipes[i].supervised;
    d["kd_weight"] = recipes[i].kd;
    d["kd_balance"] = balance[i];
    d["temperature"] = w.temperature;
    d["gradient_weight"] = recipes[i].gradient;
    d["edge_operator"] = edges;
    d["edge_weight"] = w.edgeWeight;
    d["kd_ramp_fraction"] = w.kdRampFraction;
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

}  // namespace segnode::distill
