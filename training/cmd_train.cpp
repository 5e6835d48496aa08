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
#include "training/Trainer.h"

namespace segnode::distill {
namespace fs = std::filesystem;

namespace {

const std::set<std::string> kScheduleOptions{"--iterations", "--time-budget", "--optimizer", "--lr", "--weight-decay",
                                             "--precision", "--seed", "--batch", "--patch", "--log-every",
                                             "--out", "--name", "--version"};

training::ScheduleOptions scheduleFrom(const cli::Args& a) {
  training::ScheduleOptions s;
  s.iterations = a.intValue("--iterations", 1000, 1, 100000000);
  s.timeBudgetSeconds = a.doubleValue("--time-budget", 0, 0, 1e7);
  s.optimizer = a.value("--optimizer").value_or("sgd");
  s.learningRate = a.doubleValue("--lr", s.optimizer == "adamw" ? 1e-3 : 1e-2, 1e-7, 10);
  s.weightDecay = a.doubleValue("--weight-decay", 3e-5, 0, 1);
  std::string p = a.value("--precision").value_or("bf16");
  if (p != "bf16" && p != "fp32") throw Error(ErrorCode::InvalidArgument, "--precision must be bf16 or fp32");
  s.bf16 = p == "bf16";
  s.seed = uint64_t(a.intValue("--seed", 1, 0, 1 << 30));
  s.logEvery = a.intValue("--log-every", 50, 1, 1000000);
  s.resume = a.flag("--resume");
  return s;
}

std::array<int64_t, 3> patchFrom(const cli::Args& a, const std::array<int64_t, 3>& def) {
  auto v = a.value("--patch");
  if (!v) return def;
  auto parts = cli::splitList(*v);
  if (parts.size() != 3) throw Error(ErrorCode::InvalidArgument, "--patch wants X,Y,Z");
  return {std::stoll(parts[0]), std::stoll(parts[1]), std::stoll(parts[2])};
}

YAML::Node provenanceOf(const cli::Args& a, const training::TrainResult& r, const training::ScheduleOptions& s) {
  YAML::Node p;
  p["data"]["label_maps"] = a.required("--labels");
  if (auto i = a.value("--images")) p["data"]["images"] = *i;
  if (auto t = a.value("--table")) p["data"]["generation_table"] = *t;
  p["training"]["iterations"] = r.iterations;
  p["training"]["seconds"] = r.seconds;
  p["training"]["final_loss"] = r.finalLoss;
  p["training"]["optimizer"] = s.optimizer;
  p["training"]["learning_rate"] = s.learningRate;
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
  cli::Args args(argv, {"--resume", "--fp16"}, valued);
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
  auto r = training::trainTeacher(net, *data, patch, batch, s, out / "work", device);
  spec.created = isoNow();
  spec.provenance.reset(provenanceOf(args, r, s));  // reset: Node assignment would write through to the teacher's node
  spec.metrics.reset(YAML::Node(YAML::NodeType::Map));
  spec.metrics["params"] = net->parameterCount();
  auto written = training::writeTrainedBundle(spec, net, out / spec.name / spec.version.toString(),
                                              args.flag("--fp16") ? torch::kHalf : torch::kFloat);
  std::printf("%s\n", written.directory.c_str());
  return 0;
}

namespace {

// Seconds for one volume on this machine's CPU with random weights of the candidate's width.
double measureLatency(const engine::BundleSpec& teacher, int divisor, int minFeatures, const fs::path& input,
                      const fs::path& scratch) {
  engine::BundleSpec spec = teacher;
  spec.architecture = teacher.architecture.withWidthDivisor(divisor, minFeatures);
  spec.name = "latency-probe";
  spec.provenance.reset(YAML::Node(YAML::NodeType::Map));
  spec.provenance["untrained"] = true;
  auto written = engine::writeRandomBundle(spec, scratch / ("w" + std::to_string(divisor)), 1);
  auto model = engine::SegmentationModel::load(written);
  engine::Volume v = engine::readNifti(input);
  c10::InferenceMode guard;
  engine::segment(*model, v);  // warm-up (TorchScript optimisation runs on the first calls)
  auto t0 = std::chrono::steady_clock::now();
  engine::segment(*model, v);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int runDistill(const ArgList& argv) {
  auto valued = kDataOptions;
  valued.insert(kScheduleOptions.begin(), kScheduleOptions.end());
  valued.insert({"--teacher", "--divisors", "--min-features", "--max-params", "--latency-budget", "--latency-input",
                 "--kd-weight", "--gradient-weight", "--supervised-weight", "--temperature", "--edge-operator",
                 "--edge-weight", "--warmup", "--threads", "--init-students"});
  cli::Args args(argv, {"--resume", "--dry-run"}, valued);
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

  training::DistillWeights w;
  w.supervised = args.doubleValue("--supervised-weight", 1, 0, 1e6);
  w.kd = args.doubleValue("--kd-weight", 1, 0, 1e6);
  w.gradient = args.doubleValue("--gradient-weight", 10, 0, 1e6);
  w.temperature = args.doubleValue("--temperature", 2, 0.1, 100);
  w.edgeWeight = args.doubleValue("--edge-weight", 4, 0, 1e6);
  w.warmupFraction = args.doubleValue("--warmup", 0.1, 0, 1);
  std::string edges = args.value("--edge-operator").value_or("sobel");
  if (edges != "sobel" && edges != "prewitt") throw Error(ErrorCode::InvalidArgument, "--edge-operator sobel|prewitt");
  w.edges = edges == "sobel" ? training::EdgeOperator::Sobel : training::EdgeOperator::Prewitt;

  torch::manual_seed(s.seed);
  std::vector<engine::PlainConvUNet> students;
  std::vector<engine::BundleSpec> specs;
  std::string base = teacherSpec.name;
  if (auto pos = base.rfind("-teacher"); pos != std::string::npos) base = base.substr(0, pos);
  for (int d : divisors) {
    engine::BundleSpec spec = teacherSpec;
    spec.architecture = teacherSpec.architecture.withWidthDivisor(d, minFeatures);
    spec.name = base + "-student-w" + std::to_string(d);
    if (auto n = args.value("--name"); n && divisors.size() == 1) spec.name = *n;
    if (auto v = args.value("--version"); v && !engine::SemVer::parse(*v, spec.version))
      throw Error(ErrorCode::InvalidArgument, "--version wants X.Y.Z");
    students.emplace_back(spec.architecture);
    training::initialiseHe(students.back());
    std::fprintf(stderr, "student %s: %lld parameters (teacher %lld)\n", spec.name.c_str(),
                 (long long)students.back()->parameterCount(), (long long)teacher->parameterCount());
    specs.push_back(spec);
  }
  if (auto init = args.value("--init-students")) {  // continue trained students, in --divisors order
    auto dirs = cli::splitList(*init);
    if (dirs.size() != students.size()) throw Error(ErrorCode::InvalidArgument, "--init-students wants one bundle per divisor");
    for (size_t i = 0; i < dirs.size(); ++i) copyWeights(students[i], engine::loadBundleSpec(dirs[i]));
  }
  fs::path out = args.required("--out");
  auto r = training::distillStudents(teacher, students, *data, patch, batch, s, w, out / "work", device);
  for (size_t i = 0; i < students.size(); ++i) {
    auto& spec = specs[i];
    spec.created = isoNow();
    spec.provenance.reset(provenanceOf(args, r, s));  // reset: Node assignment would write through to the teacher's node
    spec.provenance["teacher"] = teacherSpec.reference();
    spec.provenance["distillation"]["width_divisor"] = divisors[i];
    spec.provenance["distillation"]["min_features"] = minFeatures;
    spec.provenance["distillation"]["supervised_weight"] = w.supervised;
    spec.provenance["distillation"]["kd_weight"] = w.kd;
    spec.provenance["distillation"]["temperature"] = w.temperature;
    spec.provenance["distillation"]["gradient_weight"] = w.gradient;
    spec.provenance["distillation"]["edge_operator"] = edges;
    spec.provenance["distillation"]["edge_weight"] = w.edgeWeight;
    spec.provenance["distillation"]["warmup_fraction"] = w.warmupFraction;
    spec.metrics.reset(YAML::Node(YAML::NodeType::Map));
    spec.metrics["params"] = students[i]->parameterCount();
    auto written = training::writeTrainedBundle(spec, students[i], out / spec.name / spec.version.toString(), torch::kFloat);
    std::printf("%s\n", written.directory.c_str());
  }
  return 0;
}

}  // namespace segnode::distill
