#include "training/Trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <functional>

#include "common/Error.h"
#include "common/Sha256.h"
#include "engine/Safetensors.h"
#include "training/TrainState.h"

namespace segnode::training {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

// bf16 autocast on CUDA for one step; the API was renamed in LibTorch 2.4.
class Autocast {
 public:
  explicit Autocast(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~Autocast() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }

 private:
  bool on_;
};

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(engine::PlainConvUNet& net, const ScheduleOptions& s) {
  if (s.optimizer == "adamw")
    return std::make_unique<torch::optim::AdamW>(net->parameters(),
                                                 torch::optim::AdamWOptions(s.learningRate).weight_decay(s.weightDecay));
  if (s.optimizer != "sgd") throw Error(ErrorCode::InvalidArgument, "--optimizer must be sgd or adamw, not " + s.optimizer);
  return std::make_unique<torch::optim::SGD>(
      net->parameters(),
      torch::optim::SGDOptions(s.learningRate).momentum(0.99).nesterov(true).weight_decay(s.weightDecay));
}

void setLearningRate(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
}

std::string eta(double seconds) {
  char b[32];
  std::snprintf(b, sizeof b, "%dm%02ds", int(seconds) / 60, int(seconds) % 60);
  return b;
}

// One network being trained: its optimizer and the EMA of its weights.
struct Trainee {
  std::string name;
  engine::PlainConvUNet* net;
  std::unique_ptr<torch::optim::Optimizer> opt;
  std::unique_ptr<Ema> ema;
};

std::vector<Trainee> trainees(const std::vector<std::pair<std::string, engine::PlainConvUNet*>>& nets,
                              const ScheduleOptions& s, torch::Device device) {
  std::vector<Trainee> out;
  for (auto& [name, net] : nets) {
    (*net)->to(device);
    (*net)->train();
    out.push_back({name, net, makeOptimizer(*net, s), std::make_unique<Ema>(*net, s.emaDecay)});
  }
  return out;
}

// When this program started (static initialisation, before main). A call's time budget counts from
// here, set-up included (the teacher, the label maps, the synthesis context): two runs set up side
// by side on one GPU machine once took over 150 s of a 540 s call, and the call ended mid-step.
const Clock::time_point kProgramStart = Clock::now();

double programSeconds() { return std::chrono::duration<double>(Clock::now() - kProgramStart).count(); }

// Rewrites the CSV log at `path` without the rows of steps after `step` (the first column). A call
// stopped between checkpoints (at its deadline, or by a fault) logged steps that its state does not
// hold; the resumed run takes them again, and each step must appear once.
void dropRowsAfter(const fs::path& path, int64_t step) {
  std::ifstream in(path);
  std::string header, line, kept;
  bool dropped = false;
  std::getline(in, header);
  while (std::getline(in, line)) {
    if (std::strtoll(line.c_str(), nullptr, 10) <= step) kept += line + "\n";
    else dropped = true;
  }
  in.close();
  if (!dropped) return;  // the usual case: the last call ended on a checkpoint
  const fs::path tmp = path.string() + ".tmp";
  std::ofstream(tmp, std::ios::trunc) << header << "\n" << kept;
  fs::rename(tmp, path);
}

// A run's CSV log: a new one (header first), or (resumedAt >= 0) the resumed run's, continued from
// its state's step.
std::ofstream openCsv(const fs::path& path, int64_t resumedAt, const std::string& header) {
  if (resumedAt >= 0 && fs::exists(path) && fs::file_size(path) > 0) {
    dropRowsAfter(path, resumedAt);
    return std::ofstream(path, std::ios::app);
  }
  std::ofstream csv(path, std::ios::trunc);
  csv << header << "\n";
  return csv;
}

constexpr size_t kMostRowsKept = 200;  // a bound on what waits to be read, whatever logEvery is

// The logged values of the steps since the last read, kept on the device: reading a step's losses
// at once (.item()) would make the host wait for the device every step. They are read together,
// one wait for many steps, before anything is printed, validated or saved.
class LoggedRows {
 public:
  void add(int64_t step, double seconds, double lr, const std::vector<torch::Tensor>& values) {
    std::vector<torch::Tensor> row;
    for (const auto& v : values) row.push_back(v.detach().to(torch::kDouble).reshape({}));
    rows_.push_back({step, seconds, lr, torch::stack(row)});
  }
  size_t size() const { return rows_.size(); }
  // Writes every kept row to `csv` and hands each row's values to `each(values)`.
  template <class Each>
  void flush(std::ofstream& csv, Each each) {
    if (rows_.empty()) return;
    std::vector<torch::Tensor> all;
    for (const auto& r : rows_) all.push_back(r.values);
    auto host = torch::stack(all).to(torch::kCPU).contiguous();
    const auto n = host.size(1);
    const double* v = host.data_ptr<double>();
    for (size_t i = 0; i < rows_.size(); ++i, v += n) {
      csv << rows_[i].step << "," << rows_[i].seconds << "," << rows_[i].lr;
      for (int64_t k = 0; k < n; ++k) csv << "," << v[k];
      csv << "\n";
      each(std::vector<double>(v, v + n));
    }
    rows_.clear();
  }

 private:
  struct Row {
    int64_t step;
    double seconds, lr;
    torch::Tensor values;
  };
  std::vector<Row> rows_;
};

// The shared loop. `step(globalStep, batchSeed, clock)` runs one iteration with the learning rates
// already set, lapping `clock` at the end of each phase, and returns the values to log, as 0-dim
// tensors on the device (the first of each network's group is its loss).
template <class Step>
TrainResult runSchedule(std::vector<Trainee>& nets, const ScheduleOptions& s, int batch,
                        const std::array<int64_t, 3>& patch, const fs::path& workDir, const std::string& csvHeader,
                        size_t valuesPerNet, const Validator* validator, Step step) {
  fs::create_directories(workDir);
  RunState want;
  want.seed = s.seed, want.plannedIterations = s.iterations, want.warmupIterations = s.warmupIterations;
  want.learningRate = s.learningRate, want.batch = batch, want.patch = patch;
  for (auto& n : nets) want.networks.push_back(n.name);
  want.recipe = s.recipe;
  RunState st = want;
  const bool resuming = s.resume && fs::exists(workDir / "state.yaml");
  if (resuming) {
    RunState saved = readRunState(workDir);
    if (s.extend) extendRun(saved, want);
    checkSameRun(saved, want);
    if (saved.recipe.empty() && !want.recipe.empty())
      std::fprintf(stderr, "the saved state has no recipe yet: this command's is recorded from now on\n");
    st.step = saved.step, st.seconds = saved.seconds, st.calls = saved.calls, st.extensions = saved.extensions;
    for (auto& n : nets) loadNetworkState(workDir, n.name, *n.net, *n.opt, *n.ema);
    std::fprintf(stderr, "resuming at iteration %lld of %lld (%.0f s in %d calls)\n", (long long)st.step,
                 (long long)s.iterations, st.seconds, st.calls);
  }
  ++st.calls;
  auto save = [&] {
    for (auto& n : nets) saveNetworkState(workDir, n.name, *n.net, *n.opt, *n.ema);
    writeRunState(workDir, st);  // last: a state.yaml always names complete network files
  };
  const int64_t resumedAt = resuming ? st.step : -1;
  auto csv = openCsv(workDir / "curves.csv", resumedAt, "iteration,seconds,lr," + csvHeader);
  std::string valHeader = "iteration,network,weights,group,mean_dice";
  for (int c = 1; c < nets[0].net->get()->spec().numClasses; ++c) valHeader += ",dice_" + std::to_string(c);
  auto valCsv = openCsv(workDir / "validation.csv", resumedAt, valHeader);

  TrainResult r;
  r.finalLoss.assign(nets.size(), -1);
  int64_t validatedAt = -1;
  auto validate = [&] {
    if (!validator || validatedAt == st.step) return;
    validatedAt = st.step;
    r.validation.clear();
    std::string line;
    auto record = [&](const std::string& name, const char* weights, const ValidationResult& v) {
      valCsv << st.step << "," << name << "," << weights << "," << validator->group() << "," << v.mean;
      for (size_t c = 1; c < v.dice.size(); ++c) valCsv << "," << v.dice[c];
      valCsv << "\n";
    };
    for (auto& n : nets) {
      auto ema = validator->run(*n.net, &n.ema->weights());
      auto raw = validator->run(*n.net);
      r.validation.push_back(ema);
      record(n.name, "ema", ema);
      record(n.name, "raw", raw);
      char b[128];
      std::snprintf(b, sizeof b, " %s %.3f (raw %.3f)", n.name.c_str(), ema.mean, raw.mean);
      line += b;
    }
    valCsv.flush();
    std::fprintf(stderr, "validation (%s, EMA weights) at %lld:%s\n", validator->group().c_str(), (long long)st.step,
                 line.c_str());
  };

  LoggedRows rows;
  auto readRows = [&] {
    rows.flush(csv, [&](const std::vector<double>& values) {
      for (size_t i = 0; i < nets.size(); ++i) {
        double l = values[i * valuesPerNet];
        r.finalLoss[i] = r.finalLoss[i] < 0 ? l : 0.98 * r.finalLoss[i] + 0.02 * l;
      }
    });
  };

  const torch::Device device = nets[0].net->get()->parameters().front().device();
  const auto t0 = Clock::now();
  const int64_t first = st.step;
  const double before = st.seconds;
  auto callSeconds = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };
  while (st.step < s.iterations && (s.stopAfter <= 0 || st.step - first < s.stopAfter) &&
         (s.timeBudgetSeconds <= 0 || programSeconds() < s.timeBudgetSeconds)) {
    const double lr = learningRateAt(s, st.step);
    for (auto& n : nets) setLearningRate(*n.opt, lr);
    PhaseClock clock(s.stepPhases, device);
    auto values = step(st.step, batchSeed(s.seed, st.step), clock);
    for (auto& n : nets) n.ema->update(*n.net, st.step);
    clock.lap("EMA");
    ++st.step;
    st.seconds = before + callSeconds();
    rows.add(st.step, st.seconds, lr, values);
    const bool log = st.step % s.logEvery == 0 || st.step == s.iterations,
               validating = s.validateEvery > 0 && st.step % s.validateEvery == 0,
               saving = s.checkpointEvery > 0 && st.step % s.checkpointEvery == 0;
    if (log || validating || saving || s.readEveryStep || rows.size() >= kMostRowsKept) {
      readRows();  // waits for the device
      st.seconds = before + callSeconds();
    }
    if (log) {
      double rate = double(st.step - first) / std::max(1e-9, callSeconds());
      double left = double(s.iterations - st.step) / std::max(rate, 1e-9);
      std::string losses;
      for (size_t i = 0; i < nets.size(); ++i) {
        char b[96];
        std::snprintf(b, sizeof b, " %s %.4f", nets[i].name.c_str(), r.finalLoss[i]);
        losses += b;
      }
      std::fprintf(stderr, "it %lld/%lld lr %.5f %.2f it/s, schedule ETA %s; avg loss%s\n", (long long)st.step,
                   (long long)s.iterations, lr, rate, eta(std::max(0.0, left)).c_str(), losses.c_str());
      csv.flush();
    }
    if (validating) validate();
    if (saving) save();
  }
  readRows();  // waits for the device: the call's seconds end when its last step has run
  st.seconds = before + callSeconds();
  validate();
  save();
  r.iterations = st.step;
  r.seconds = st.seconds;
  r.calls = st.calls;
  r.extensions = st.extensions;
  for (auto& n : nets) r.ema.push_back(n.ema->weights());
  return r;
}

}  // namespace

void clipGradNorm(const std::vector<torch::Tensor>& parameters, double maxNorm) {
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad().data());
  if (grads.empty()) return;
  for (const auto& g : grads) norms.push_back(g.norm(2));
  auto total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  auto coefficient = (maxNorm / (total + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coefficient);
}

void initialiseHe(engine::PlainConvUNet& net) {
  torch::NoGradGuard ng;
  for (auto& m : net->modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv3d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 1e-2);
      if (c->bias.defined()) c->bias.zero_();
    } else if (auto* t = m->as<torch::nn::ConvTranspose3d>()) {
      torch::nn::init::kaiming_normal_(t->weight, 1e-2);
      if (t->bias.defined()) t->bias.zero_();
    }
  }
}

double learningRateAt(const ScheduleOptions& s, int64_t step) {
  if (step < s.warmupIterations) return s.learningRate * double(step + 1) / double(s.warmupIterations);
  double decaying = double(std::max<int64_t>(1, s.iterations - s.warmupIterations));
  double done = std::min(1.0, double(step - s.warmupIterations) / decaying);
  return s.learningRate * std::pow(1 - done, 0.9);
}

TrainResult trainTeacher(engine::PlainConvUNet& net, const Synthesizer& data, const std::array<int64_t, 3>& patch,
                         int batch, const ScheduleOptions& s, const fs::path& workDir, torch::Device device,
                         const Validator* validator) {
  auto nets = trainees({{"teacher", &net}}, s, device);
  auto& opt = *nets[0].opt;
  const bool amp = s.bf16 && device.is_cuda();
  return runSchedule(nets, s, batch, patch, workDir, "teacher_loss", 1, validator,
                     [&](int64_t, uint64_t seed, PhaseClock& clock) -> std::vector<torch::Tensor> {
                       auto b = data.sample(patch, batch, seed);
                       clock.lap("synthesis");
                       opt.zero_grad();
                       std::vector<torch::Tensor> heads;
                       {
                         Autocast ac(amp);
                         heads = net->forwardAll(b.image);
                       }
                       clock.lap("forward");
                       auto loss = deepSupervisionLoss(heads, b.target);  // float32
                       clock.lap("supervised loss");
                       loss.backward();
                       clock.lap("backward");
                       clipGradNorm(net->parameters(), 12);
                       opt.step();
                       clock.lap("optimiser");
                       return {loss};
                     });
}

TrainResult distillStudents(engine::PlainConvUNet& teacher, std::vector<engine::PlainConvUNet>& students,
                            const std::vector<StudentRecipe>& recipes, const Synthesizer& data,
                            const std::array<int64_t, 3>& patch, int batch, const ScheduleOptions& s,
                            const DistillSettings& w, const fs::path& workDir, torch::Device device,
                            const Validator* validator) {
  if (recipes.size() != students.size()) throw Error(ErrorCode::InvalidArgument, "one recipe per student");
  teacher->to(device);
  teacher->eval();  // InstanceNorm keeps no running statistics: eval changes nothing but intent
  // The feature column exists only in runs that use it, so earlier runs' curves.csv resume as they are.
  const bool features = std::any_of(recipes.begin(), recipes.end(), [](const auto& r) { return r.feature > 0; });
  std::vector<std::pair<std::string, engine::PlainConvUNet*>> named;
  std::string header;
  for (size_t i = 0; i < students.size(); ++i) {
    named.push_back({recipes[i].name, &students[i]});
    const std::string& p = recipes[i].name;
    header += (i ? "," : "") + p + "_loss," + p + "_supervised," + p + "_kd," + p + "_gradient";
    if (features) header += "," + p + "_feature";
    if (recipes[i].feature > 0 && recipes[i].channels.size() != size_t(students[i]->spec().stages() - 1))
      throw Error(ErrorCode::InvalidArgument, recipes[i].name + ": feature distillation needs its decoder channels");
  }
  // The channel sets go to the device once, not with every step's loss.
  std::vector<std::vector<torch::Tensor>> channels(recipes.size());
  for (size_t i = 0; i < recipes.size(); ++i)
    for (const auto& c : recipes[i].channels) channels[i].push_back(c.to(device));
  auto nets = trainees(named, s, device);
  const bool amp = s.bf16 && device.is_cuda();
  return runSchedule(nets, s, batch, patch, workDir, header, features ? 5 : 4, validator,
                     [&](int64_t step, uint64_t seed, PhaseClock& clock) -> std::vector<torch::Tensor> {
    auto b = data.sample(patch, batch, seed);
    clock.lap("synthesis");
    torch::Tensor tLogits;
    std::vector<torch::Tensor> tFeatures;
    {
      torch::NoGradGuard ng;
      Autocast ac(amp);
      if (features) {
        auto o = teacher->forwardWithFeatures(b.image);
        tLogits = o.heads.front().to(torch::kFloat);
        tFeatures = std::move(o.features);
      } else {
        tLogits = teacher->forward(b.image).to(torch::kFloat);
      }
    }
    clock.lap("teacher");
    const double done = double(step) / double(std::max<int64_t>(1, s.iterations));
    const double ramp = w.kdRampFraction > 0 ? std::min(1.0, done / w.kdRampFraction) : 1.0;
    std::vector<torch::Tensor> out;
    for (size_t i = 0; i < nets.size(); ++i) {
      const auto& r = recipes[i];
      auto& net = *nets[i].net;
      nets[i].opt->zero_grad();
      engine::PlainConvUNetImpl::Outputs o;
      {
        Autocast ac(amp);
        if (r.feature > 0)
          o = net->forwardWithFeatures(b.image);
        else
          o.heads = net->forwardAll(b.image);
      }
      clock.lap("student forward");
      const auto& heads = o.heads;
      // Losses outside autocast: float32, so that small KL and edge differences keep their digits.
      auto zero = torch::zeros({}, tLogits.options());
      auto sup = deepSupervisionLoss(heads, b.target);
      clock.lap("supervised loss");
      auto kd = r.kd == 0 ? zero
                : r.balancedKd ? balancedKlDistillationLoss(heads[0], tLogits, w.temperature)
                               : klDistillationLoss(heads[0], tLogits, w.temperature);
      clock.lap("KD loss");
      auto grad = r.gradient == 0 ? zero : gradientDistillationLoss(heads[0], tLogits, w.edges, w.edgeWeight);
      clock.lap("gradient KD loss");
      auto feat = r.feature == 0 ? zero : featureDistillationLoss(o.features, tFeatures, channels[i]);
      if (r.feature > 0) clock.lap("feature KD loss");
      auto loss = r.supervised * sup + ramp * (r.kd * kd + r.gradient * grad + r.feature * feat);
      loss.backward();
      clock.lap("backward");
      clipGradNorm(net->parameters(), 12);
      nets[i].opt->step();
      clock.lap("optimiser");
      out.insert(out.end(), {loss, sup, kd, grad});
      if (features) out.push_back(feat);
    }
    return out;
  });
}

SharedStepCost measureSharedStepCost(engine::PlainConvUNet& teacher, const Synthesizer& data,
                                     const std::array<int64_t, 3>& patch, int batch, const ScheduleOptions& s,
                                     torch::Device device) {
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  const int n = 5;
  auto perCall = [&](auto&& f, const std::function<void()>& afterWarmUp = [] {}) {
    f();  // warm-up
    sync();
    afterWarmUp();
    const auto t0 = Clock::now();
    for (int i = 0; i < n; ++i) f();
    sync();
    return std::chrono::duration<double>(Clock::now() - t0).count() / n;
  };
  SharedStepCost c;
  uint64_t seed = 1;
  c.synthesis = perCall([&] { data.sample(patch, batch, seed++); });
  if (data.threads() > 1) {
    const Synthesizer serial = data.withThreads(1);
    seed = 1;
    c.serialSynthesis = perCall([&] { serial.sample(patch, batch, seed++); });
  }
  Synthesizer::StageSeconds stages;
  const Synthesizer staged = data.withStageSeconds(&stages);
  seed = 1;
  perCall([&] { staged.sample(patch, batch, seed++); }, [&] { stages.clear(); });  // the warm-up's laps out
  for (auto& [stage, seconds] : stages) c.synthesisStages.emplace_back(stage, seconds / n);
  auto b = data.sample(patch, batch, 0);
  teacher->to(device);
  teacher->eval();
  c.teacher = perCall([&] {
    torch::NoGradGuard ng;
    Autocast ac(s.bf16 && device.is_cuda());
    teacher->forward(b.image);
  });
  return c;
}

engine::BundleSpec writeTrainedBundle(engine::BundleSpec spec, engine::PlainConvUNet& net, const fs::path& dir,
                                      torch::ScalarType storeAs) {
  engine::TensorMap weights;
  for (auto& p : net->named_parameters()) weights[p.key()] = p.value().detach();
  return writeTrainedBundle(std::move(spec), weights, dir, storeAs);
}

engine::BundleSpec writeTrainedBundle(engine::BundleSpec spec, const engine::TensorMap& trained, const fs::path& dir,
                                      torch::ScalarType storeAs) {
  fs::create_directories(dir);
  engine::TensorMap weights;
  for (auto& [k, v] : trained) weights[k] = v.detach().to(torch::kCPU).to(torch::kFloat);
  engine::writeSafetensors(dir / spec.weightsFile, weights, {{"format", "pt"}, {"bundle", spec.name}}, storeAs);
  spec.weightsSha256 = sha256File(dir / spec.weightsFile);
  spec.directory = dir;
  engine::saveBundleSpec(spec, dir / "bundle.yaml");
  return spec;
}

engine::PlainConvUNet loadEager(const engine::BundleSpec& spec, torch::Device device) {
  if (sha256File(spec.weightsPath()) != spec.weightsSha256)
    throw Error(ErrorCode::BadBundle, spec.weightsPath().string() + ": weights do not match their sha256");
  engine::PlainConvUNet net(spec.architecture);
  auto weights = engine::readSafetensors(spec.weightsPath());
  torch::NoGradGuard ng;
  for (auto& p : net->named_parameters()) {
    auto found = weights.find(p.key());
    if (found == weights.end() || found->second.sizes() != p.value().sizes())
      throw Error(ErrorCode::BadBundle, spec.weightsPath().string() + ": tensor '" + p.key() + "' missing or of wrong shape");
    p.value().copy_(found->second.to(torch::kFloat));
  }
  net->to(device);
  return net;
}

}  // namespace segnode::training
