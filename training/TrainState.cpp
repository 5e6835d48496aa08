#include "training/TrainState.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "common/Error.h"
#include "common/Yaml.h"

namespace segnode::training {
namespace fs = std::filesystem;

Ema::Ema(engine::PlainConvUNet& net, double decay) : decay_(decay) {
  for (auto& p : net->named_parameters()) shadow_[p.key()] = p.value().detach().to(torch::kFloat).clone();
}

double Ema::decayAt(double decay, int64_t step) { return std::min(decay, double(1 + step) / double(10 + step)); }

void Ema::update(engine::PlainConvUNet& net, int64_t step) {
  const double d = decayAt(decay_, step);
  torch::NoGradGuard ng;
  for (auto& p : net->named_parameters()) shadow_.at(p.key()).mul_(d).add_(p.value().detach(), 1 - d);
}

uint64_t batchSeed(uint64_t seed, int64_t step) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + uint64_t(step) + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

namespace {

// LibTorch keys an optimizer's per-parameter state by the parameter's TensorImpl: as a string up to
// 1.13 (the pointer printed), as the pointer itself in 2.x.
template <class Map>
typename Map::key_type stateKey(const Map&, const torch::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream os;
    os << static_cast<const void*>(p.unsafeGetTensorImpl());
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

}  // namespace

engine::TensorMap optimizerStateOf(engine::PlainConvUNet& net, torch::optim::Optimizer& opt) {
  auto& state = opt.state();
  const bool sgd = dynamic_cast<torch::optim::SGD*>(&opt), adamw = dynamic_cast<torch::optim::AdamW*>(&opt);
  if (!sgd && !adamw) throw Error(ErrorCode::InvalidArgument, "a training state is kept for sgd and adamw only");
  engine::TensorMap out;
  for (auto& p : net->named_parameters()) {
    auto found = state.find(stateKey(state, p.value()));
    if (found == state.end()) continue;  // no step taken yet
    if (sgd) {
      auto& s = static_cast<torch::optim::SGDParamState&>(*found->second);
      if (s.momentum_buffer().defined()) out["momentum." + p.key()] = s.momentum_buffer().detach();
    } else {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*found->second);
      out["exp_avg." + p.key()] = s.exp_avg().detach();
      out["exp_avg_sq." + p.key()] = s.exp_avg_sq().detach();
      out["step." + p.key()] = torch::tensor({double(s.step())});  // exact in float32 below 2^24 steps
    }
  }
  return out;
}

void restoreOptimizerState(engine::PlainConvUNet& net, torch::optim::Optimizer& opt, const engine::TensorMap& saved) {
  auto& state = opt.state();
  const bool sgd = dynamic_cast<torch::optim::SGD*>(&opt), adamw = dynamic_cast<torch::optim::AdamW*>(&opt);
  if (!sgd && !adamw) throw Error(ErrorCode::InvalidArgument, "a training state is kept for sgd and adamw only");
  for (auto& p : net->named_parameters()) {
    auto like = [&](const std::string& k) { return saved.at(k).to(p.value().device(), p.value().scalar_type()).clone(); };
    if (sgd && saved.count("momentum." + p.key())) {
      auto s = std::make_unique<torch::optim::SGDParamState>();
      s->momentum_buffer(like("momentum." + p.key()));
      state[stateKey(state, p.value())] = std::move(s);
    } else if (adamw && saved.count("exp_avg." + p.key())) {
      auto s = std::make_unique<torch::optim::AdamWParamState>();
      s->exp_avg(like("exp_avg." + p.key()));
      s->exp_avg_sq(like("exp_avg_sq." + p.key()));
      s->step(int64_t(saved.at("step." + p.key()).item<double>()));
      state[stateKey(state, p.value())] = std::move(s);
    }
  }
}

void saveNetworkState(const fs::path& dir, const std::string& name, engine::PlainConvUNet& net,
                      torch::optim::Optimizer& opt, const Ema& ema) {
  engine::TensorMap all;
  for (auto& p : net->named_parameters()) all["weights." + p.key()] = p.value().detach().to(torch::kCPU);
  for (auto& [k, v] : optimizerStateOf(net, opt)) all[k] = v.to(torch::kCPU);
  for (auto& [k, v] : ema.weights()) all["ema." + k] = v.to(torch::kCPU);
  fs::create_directories(dir);
  auto tmp = dir / (name + ".state.safetensors.tmp");
  engine::writeSafetensors(tmp, all, {{"format", "segnode-train-state"}, {"network", name}}, torch::kFloat);
  fs::rename(tmp, dir / (name + ".state.safetensors"));
}

void loadNetworkState(const fs::path& dir, const std::string& name, engine::PlainConvUNet& net,
                      torch::optim::Optimizer& opt, Ema& ema) {
  const auto path = dir / (name + ".state.safetensors");
  auto all = engine::readSafetensors(path);
  torch::NoGradGuard ng;
  for (auto& p : net->named_parameters()) {
    auto need = [&](const std::string& k) -> torch::Tensor& {
      auto found = all.find(k);
      if (found == all.end() || found->second.sizes() != p.value().sizes())
        throw Error(ErrorCode::BadInput, path.string() + ": '" + k + "' missing or of another shape than the network's");
      return found->second;
    };
    p.value().copy_(need("weights." + p.key()));
    ema.weights().at(p.key()).copy_(need("ema." + p.key()));
  }
  restoreOptimizerState(net, opt, all);
}

void writeRunState(const fs::path& dir, const RunState& s) {
  YAML::Emitter e;
  e << YAML::BeginMap;
  e << YAML::Key << "step" << YAML::Value << s.step;
  e << YAML::Key << "seconds" << YAML::Value << s.seconds;
  e << YAML::Key << "seed" << YAML::Value << s.seed;
  e << YAML::Key << "planned_iterations" << YAML::Value << s.plannedIterations;
  e << YAML::Key << "warmup_iterations" << YAML::Value << s.warmupIterations;
  e << YAML::Key << "learning_rate" << YAML::Value << s.learningRate;
  e << YAML::Key << "batch" << YAML::Value << s.batch;
  e << YAML::Key << "patch" << YAML::Value << YAML::Flow << std::vector<int64_t>(s.patch.begin(), s.patch.end());
  e << YAML::Key << "networks" << YAML::Value << YAML::Flow << s.networks;
  e << YAML::Key << "calls" << YAML::Value << s.calls;
  if (!s.extensions.empty()) e << YAML::Key << "extensions" << YAML::Value << s.extensions;
  if (!s.recipe.empty()) e << YAML::Key << "recipe" << YAML::Value << s.recipe;
  e << YAML::EndMap;
  fs::create_directories(dir);
  {
    std::ofstream out(dir / "state.yaml.tmp");
    out << "# segnode-distill training state: continue with --resume (training/TrainState.h)\n" << e.c_str() << "\n";
    if (!out) throw Error(ErrorCode::Io, (dir / "state.yaml.tmp").string() + ": cannot write");
  }
  fs::rename(dir / "state.yaml.tmp", dir / "state.yaml");
}

RunState readRunState(const fs::path& dir) {
  const auto path = dir / "state.yaml";
  if (!fs::exists(path)) throw Error(ErrorCode::NotFound, path.string() + ": no training state to resume");
  yaml::Reader r(path, ErrorCode::BadInput);
  RunState s;
  s.step = r.get<int64_t>("step", "an integer");
  s.seconds = r.get<double>("seconds", "a number of seconds");
  s.seed = r.get<uint64_t>("seed", "an unsigned integer");
  s.plannedIterations = r.get<int64_t>("planned_iterations", "an integer");
  s.warmupIterations = r.get<int64_t>("warmup_iterations", "an integer");
  s.learningRate = r.get<double>("learning_rate", "a number");
  s.batch = r.get<int>("batch", "an integer");
  s.patch = r.triple<int64_t>("patch", "a size");
  s.networks = r.list<std::string>("networks", "a network name");
  s.calls = r.getOr<int>("calls", "an integer", 0);
  s.extensions = r.list<std::string>("extensions", "text");
  if (auto recipe = r.at("recipe"); recipe.IsDefined()) {
    if (!recipe.IsMap()) r.fail("recipe", "must be a map of name: fingerprint", "write name: value lines");
    for (const auto& kv : recipe) s.recipe[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
  r.finish();
  return s;
}

void checkSameRun(const RunState& saved, const RunState& wanted) {
  auto str = [](auto v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  auto refuse = [](const std::string& option, const std::string& had, const std::string& want) {
    throw Error(ErrorCode::InvalidArgument, "--resume: the saved run has " + option + " " + had + ", this command " +
                                                want + " (a run keeps one schedule: start a new --out to change it)");
  };
  auto patch = [](const std::array<int64_t, 3>& p) {
    return std::to_string(p[0]) + "," + std::to_string(p[1]) + "," + std::to_string(p[2]);
  };
  if (saved.plannedIterations != wanted.plannedIterations)
    refuse("--iterations", str(saved.plannedIterations), str(wanted.plannedIterations));
  if (saved.warmupIterations != wanted.warmupIterations)
    refuse("--lr-warmup", str(saved.warmupIterations), str(wanted.warmupIterations));
  if (std::fabs(saved.learningRate - wanted.learningRate) > 1e-9 * saved.learningRate)
    refuse("--lr", str(saved.learningRate), str(wanted.learningRate));
  if (saved.seed != wanted.seed) refuse("--seed", str(saved.seed), str(wanted.seed));
  if (saved.batch != wanted.batch) refuse("--batch", str(saved.batch), str(wanted.batch));
  if (saved.patch != wanted.patch) refuse("--patch", patch(saved.patch), patch(wanted.patch));
  // A network the run starts from or learns from ("init", "teacher": "NAME@VERSION SHA256") is its
  // weights: the same weights re-released under another version (another tile step or crop, which
  // only inference reads) are the same recipe.
  auto same = [](const std::string& what, const std::string& had, const std::string& now) {
    if (what != "init" && what != "teacher") return had == now;
    return had.substr(had.find_last_of(' ') + 1) == now.substr(now.find_last_of(' ') + 1);
  };
  for (const auto& [what, had] : saved.recipe) {
    auto want = wanted.recipe.find(what);
    const std::string now = want == wanted.recipe.end() ? "none" : want->second;
    if (!same(what, had, now))
      throw Error(ErrorCode::InvalidArgument, "--resume: the saved run drew its batches from " + what + " " + had +
                                                  ", this command from " + now +
                                                  " (a run keeps one recipe: start a new --out to change it)");
  }
  for (const auto& n : wanted.networks)  // a subset may continue (the losers of an ablation stop)
    if (std::find(saved.networks.begin(), saved.networks.end(), n) == saved.networks.end())
      throw Error(ErrorCode::InvalidArgument, "--resume: the saved run has no network '" + n + "' (it has " +
                                                  str(saved.networks.size()) + ": start a new --out for a new one)");
}

void extendRun(RunState& saved, const RunState& wanted) {
  if (wanted.plannedIterations == saved.plannedIterations) return;
  if (wanted.plannedIterations < saved.plannedIterations || saved.step >= saved.plannedIterations)
    throw Error(ErrorCode::InvalidArgument, "--extend raises the planned total of a run that has not ended (saved: " +
                                                std::to_string(saved.step) + " of " +
                                                std::to_string(saved.plannedIterations) + " iterations)");
  saved.extensions.push_back("at step " + std::to_string(saved.step) + ": " + std::to_string(saved.plannedIterations) +
                             " -> " + std::to_string(wanted.plannedIterations));
  saved.plannedIterations = wanted.plannedIterations;
}

}  // namespace segnode::training
