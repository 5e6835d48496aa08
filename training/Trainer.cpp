#include "training/Trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "common/Error.h"
#include "common/Sha256.h"
#include "engine/Safetensors.h"

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

// Fraction of the schedule done: iterations or wall time, whichever is further along.
double progress(int64_t it, double seconds, const ScheduleOptions& s) {
  double p = double(it) / double(std::max<int64_t>(1, s.iterations));
  if (s.timeBudgetSeconds > 0) p = std::max(p, seconds / s.timeBudgetSeconds);
  return std::min(1.0, p);
}

struct Progress {  // progress.txt: iteration and seconds spent, for --resume
  int64_t iteration = 0;
  double seconds = 0;
};
Progress readProgress(const fs::path& dir) {
  Progress p;
  std::ifstream in(dir / "progress.txt");
  in >> p.iteration >> p.seconds;
  return p;
}
void writeProgress(const fs::path& dir, const Progress& p) {
  std::ofstream out(dir / "progress.txt.tmp");
  out << p.iteration << " " << p.seconds << "\n";
  out.close();
  fs::rename(dir / "progress.txt.tmp", dir / "progress.txt");
}

std::string eta(double seconds) {
  char b[32];
  std::snprintf(b, sizeof b, "%dm%02ds", int(seconds) / 60, int(seconds) % 60);
  return b;
}

// Shared loop: `step(it, lr)` runs one iteration and returns the losses to log.
template <class Step>
TrainResult runSchedule(std::vector<std::pair<std::string, engine::PlainConvUNet*>> nets,
                        std::vector<torch::optim::Optimizer*> optimizers, const ScheduleOptions& s,
                        const fs::path& workDir, const std::string& csvHeader, Step step) {
  fs::create_directories(workDir);
  Progress start;
  if (s.resume && fs::exists(workDir / "progress.txt")) {
    start = readProgress(workDir);
    for (size_t i = 0; i < nets.size(); ++i) {
      torch::load(*nets[i].second, (workDir / (nets[i].first + ".pt")).string());
      torch::load(*optimizers[i], (workDir / (nets[i].first + ".optim.pt")).string());
    }
    std::fprintf(stderr, "resuming at iteration %lld (%.0f s done)\n", (long long)start.iteration, start.seconds);
  }
  auto save = [&](const Progress& p) {
    for (size_t i = 0; i < nets.size(); ++i) {
      torch::save(*nets[i].second, (workDir / (nets[i].first + ".pt")).string());
      torch::save(*optimizers[i], (workDir / (nets[i].first + ".optim.pt")).string());
    }
    writeProgress(workDir, p);
  };
  std::ofstream csv(workDir / "curves.csv", s.resume ? std::ios::app : std::ios::trunc);
  if (!s.resume || start.iteration == 0) csv << "iteration,seconds,lr," << csvHeader << "\n";

  const double lr0 = s.learningRate;
  const auto t0 = Clock::now();
  TrainResult r;
  int64_t it = start.iteration;
  double seconds = start.seconds;
  double ema = -1;
  while (it < s.iterations && (s.timeBudgetSeconds <= 0 || seconds < s.timeBudgetSeconds)) {
    const double done = progress(it, seconds, s);
    double lr = lr0 * std::pow(1 - done, 0.9);
    for (auto* o : optimizers) setLearningRate(*o, lr);
    std::vector<double> losses = step(it, done);
    ++it;
    seconds = start.seconds + std::chrono::duration<double>(Clock::now() - t0).count();
    ema = ema < 0 ? losses[0] : 0.98 * ema + 0.02 * losses[0];
    csv << it << "," << seconds << "," << lr;
    for (double l : losses) csv << "," << l;
    csv << "\n";
    if (it % s.logEvery == 0 || it == s.iterations) {
      double rate = double(it - start.iteration) / std::max(1e-9, seconds - start.seconds);
      double left = double(s.iterations - it) / std::max(rate, 1e-9);
      if (s.timeBudgetSeconds > 0) left = std::min(left, s.timeBudgetSeconds - seconds);
      std::fprintf(stderr, "it %lld/%lld loss %.4f (avg %.4f) lr %.5f %.2f it/s ETA %s\n", (long long)it,
                   (long long)s.iterations, losses[0], ema, lr, rate, eta(std::max(0.0, left)).c_str());
      csv.flush();
    }
    if (s.checkpointEvery > 0 && it % s.checkpointEvery == 0) save({it, seconds});
    r.finalLoss = ema;
  }
  save({it, seconds});
  r.iterations = it;
  r.seconds = seconds;
  return r;
}

}  // namespace

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

TrainResult trainTeacher(engine::PlainConvUNet& net, const Synthesizer& data, const std::array<int64_t, 3>& patch,
                         int batch, const ScheduleOptions& s, const fs::path& workDir, torch::Device device) {
  net->to(device);
  net->train();
  auto opt = makeOptimizer(net, s);
  const bool amp = s.bf16 && device.is_cuda();
  return runSchedule({{"teacher", &net}}, {opt.get()}, s, workDir, "loss",
                     [&](int64_t it, double) -> std::vector<double> {
                       auto b = data.sample(patch, batch, s.seed * 7919 + uint64_t(it));
                       opt->zero_grad();
                       torch::Tensor loss;
                       {
                         Autocast ac(amp);
                         loss = deepSupervisionLoss(net->forwardAll(b.image), b.target);
                       }
                       loss.backward();
                       torch::nn::utils::clip_grad_norm_(net->parameters(), 12);
                       opt->step();
                       return {loss.item<double>()};
                     });
}

TrainResult distillStudents(engine::PlainConvUNet& teacher, std::vector<engine::PlainConvUNet>& students,
                            const Synthesizer& data, const std::array<int64_t, 3>& patch, int batch,
                            const ScheduleOptions& s, const DistillWeights& w, const fs::path& workDir,
                            torch::Device device) {
  teacher->to(device);
  teacher->eval();  // InstanceNorm keeps no running statistics: eval changes nothing but intent
  std::vector<std::unique_ptr<torch::optim::Optimizer>> opts;
  std::vector<std::pair<std::string, engine::PlainConvUNet*>> nets;
  std::vector<torch::optim::Optimizer*> raw;
  std::string header;
  for (size_t i = 0; i < students.size(); ++i) {
    students[i]->to(device);
    students[i]->train();
    opts.push_back(makeOptimizer(students[i], s));
    raw.push_back(opts.back().get());
    nets.push_back({"student" + std::to_string(i), &students[i]});
    std::string p = "s" + std::to_string(i) + "_";
    header += (i ? "," : "") + p + "loss," + p + "supervised," + p + "kd," + p + "gradient";
  }
  const bool amp = s.bf16 && device.is_cuda();
  return runSchedule(nets, raw, s, workDir, header, [&](int64_t it, double done) -> std::vector<double> {
    auto b = data.sample(patch, batch, s.seed * 7919 + uint64_t(it));
    torch::Tensor tLogits;
    {
      torch::NoGradGuard ng;
      Autocast ac(amp);
      tLogits = teacher->forward(b.image).to(torch::kFloat);
    }
    double ramp = w.warmupFraction > 0 ? std::min(1.0, done / w.warmupFraction) : 1.0;
    std::vector<double> out;
    for (size_t i = 0; i < students.size(); ++i) {
      raw[i]->zero_grad();
      torch::Tensor sup, kd, grad;
      {
        Autocast ac(amp);
        auto heads = students[i]->forwardAll(b.image);
        sup = deepSupervisionLoss(heads, b.target);
        kd = klDistillationLoss(heads[0], tLogits, w.temperature);
        grad = gradientDistillationLoss(heads[0], tLogits, w.edges, w.edgeWeight);
      }
      auto loss = w.supervised * sup + ramp * (w.kd * kd + w.gradient * grad);
      loss.backward();
      torch::nn::utils::clip_grad_norm_(students[i]->parameters(), 12);
      raw[i]->step();
      out.insert(out.end(), {loss.item<double>(), sup.item<double>(), kd.item<double>(), grad.item<double>()});
    }
    return out;
  });
}

engine::BundleSpec writeTrainedBundle(engine::BundleSpec spec, engine::PlainConvUNet& net, const fs::path& dir,
                                      torch::ScalarType storeAs) {
  fs::create_directories(dir);
  engine::TensorMap weights;
  for (auto& p : net->named_parameters()) weights[p.key()] = p.value().detach().to(torch::kCPU).to(torch::kFloat);
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
