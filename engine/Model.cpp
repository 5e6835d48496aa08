#include "engine/Model.h"

#include <set>

#include <torch/script.h>
#include <torch/torch.h>

#include "common/Error.h"
#include "common/Log.h"
#include "common/Sha256.h"
#include "engine/Safetensors.h"
#include "engine/nn/PlainConvUNet.h"
#include "engine/nn/ScriptedUNet.h"
#ifdef SEGNODE_WITH_ONEDNN
#include "engine/nn/DnnlUNet.h"
#endif

namespace segnode::engine {

struct SegmentationModel::Impl {
  PlainConvUNet eager{nullptr};
  mutable torch::jit::Module scripted;
#ifdef SEGNODE_WITH_ONEDNN
  std::unique_ptr<DnnlUNet> dnnl;
#endif
};

bool cpuHasNativeBf16() { return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16"); }
bool cpuHasInt8Dot() {
  return __builtin_cpu_supports("avx512vnni") || __builtin_cpu_supports("avxvnni") || __builtin_cpu_supports("amx-int8");
}

Backend defaultBackend() {
#ifdef SEGNODE_WITH_ONEDNN
  return Backend::OneDnn;
#else
  return Backend::TorchScript;
#endif
}

const char* toString(Backend b) {
  switch (b) {
    case Backend::Eager: return "eager";
    case Backend::TorchScript: return "script";
    case Backend::OneDnn: return "onednn";
  }
  return "?";
}

SegmentationModel::SegmentationModel(BundleSpec spec, Backend backend)
    : spec_(std::move(spec)), backend_(backend), impl_(std::make_unique<Impl>()) {}
SegmentationModel::~SegmentationModel() = default;

namespace {

std::string shapeText(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Strict name/shape match between the architecture and the file, both directions.
void copyWeights(PlainConvUNet& net, const TensorMap& weights, const std::string& file) {
  std::set<std::string> expected;
  torch::NoGradGuard noGrad;
  for (auto& p : net->named_parameters()) {
    expected.insert(p.key());
    auto it = weights.find(p.key());
    if (it == weights.end())
      throw Error(ErrorCode::BadBundle, file + ": tensor '" + p.key() + "' is missing (architecture and weights disagree)");
    if (it->second.sizes() != p.value().sizes())
      throw Error(ErrorCode::BadBundle, file + ": tensor '" + p.key() + "' has shape " + shapeText(it->second.sizes()) +
                                            ", the architecture needs " + shapeText(p.value().sizes()));
    p.value().copy_(it->second.to(torch::kFloat));
  }
  for (const auto& [name, t] : weights)
    if (!expected.count(name))
      throw Error(ErrorCode::BadBundle, file + ": unexpected tensor '" + name + "' (architecture and weights disagree)");
}

}  // namespace

std::shared_ptr<SegmentationModel> SegmentationModel::load(const BundleSpec& spec, Backend backend) {
  return load(spec, backend, spec.inference.precision);
}

std::shared_ptr<SegmentationModel> SegmentationModel::load(const BundleSpec& spec, Backend backend, Precision precision) {
  const std::string file = spec.weightsPath().string();
  if (!std::filesystem::exists(spec.weightsPath()))
    throw Error(ErrorCode::BadBundle, file + ": missing (bundle.yaml names it under weights.file)");
  std::string sum = sha256File(spec.weightsPath());
  if (sum != spec.weightsSha256)
    throw Error(ErrorCode::BadBundle, file + ": sha256 is " + sum + " but bundle.yaml says " + spec.weightsSha256 +
                                          " (corrupt or replaced weights; reinstall the bundle)");
  TensorMap weights = readSafetensors(spec.weightsPath());
  std::shared_ptr<SegmentationModel> m(new SegmentationModel(spec, backend));
  m->impl_->eager = PlainConvUNet(spec.architecture);
  copyWeights(m->impl_->eager, weights, file);
  m->impl_->eager->eval();
  m->parameterCount_ = m->impl_->eager->parameterCount();
  if (precision == Precision::BFloat16 && !cpuHasNativeBf16()) {
    SEGNODE_LOG(Warn, Infer, spec.reference() << ": bf16 requested, but this CPU has no native bf16 (AVX512-BF16 or "
                                                 "AMX); running float32, which is faster here");
    precision = Precision::Float32;
  }
  if (precision == Precision::Int8 && !cpuHasInt8Dot()) {
    SEGNODE_LOG(Warn, Infer, spec.reference() << ": int8 requested, but this CPU has no 8-bit dot product (VNNI or "
                                                 "AMX-INT8); running float32");
    precision = Precision::Float32;
  }
  if (precision == Precision::Int8 && backend != Backend::OneDnn)
    throw Error(ErrorCode::InvalidArgument, "int8 inference needs the onednn backend");
  m->precision_ = precision;
  const bool bf16 = precision == Precision::BFloat16;
  if (backend == Backend::OneDnn) {
#ifdef SEGNODE_WITH_ONEDNN
    m->impl_->dnnl = std::make_unique<DnnlUNet>(spec.architecture, weights, precision, spec.inference.int8.activationAbsmax);
    m->impl_->eager = nullptr;
#else
    throw Error(ErrorCode::Unsupported, "this build has no oneDNN backend (built without libdnnl-dev); use script or eager");
#endif
  } else if (backend == Backend::TorchScript) {
    if (bf16)
      for (auto& [name, t] : weights) t = t.to(torch::kBFloat16);
    m->impl_->scripted = buildScriptedUNet(spec.architecture, weights, /*optimize=*/true, bf16 ? torch::kBFloat16 : torch::kFloat);
    m->impl_->eager = nullptr;  // the frozen module holds its own copy of the weights
  } else if (bf16) {
    throw Error(ErrorCode::InvalidArgument, "bf16 inference needs the onednn or script backend");
  }
  return m;
}

torch::Tensor SegmentationModel::forward(const torch::Tensor& x) const {
#ifdef SEGNODE_WITH_ONEDNN
  if (backend_ == Backend::OneDnn) return impl_->dnnl->forward(x.to(torch::kFloat));  // bf16 inside
#endif
  const bool bf16 = precision_ == Precision::BFloat16;
  torch::Tensor in = bf16 ? x.to(torch::kBFloat16) : x;
  torch::Tensor out = backend_ == Backend::TorchScript ? impl_->scripted.forward({in}).toTensor() : impl_->eager->forward(in);
  return bf16 ? out.to(torch::kFloat) : out;  // logits are accumulated in float32 either way
}

std::vector<std::vector<double>> SegmentationModel::calibrationAbsmax(const torch::Tensor& x, double percentile) const {
#ifdef SEGNODE_WITH_ONEDNN
  if (backend_ == Backend::OneDnn) return impl_->dnnl->calibrationAbsmax(x.to(torch::kFloat), percentile);
#endif
  (void)x, (void)percentile;
  throw Error(ErrorCode::Unsupported, "int8 calibration needs the onednn backend");
}

BundleSpec writeRandomBundle(BundleSpec spec, const std::filesystem::path& directory, uint64_t seed,
                             torch::ScalarType storeAs) {
  std::filesystem::create_directories(directory);
  torch::manual_seed(seed);
  spec.architecture.numClasses = int(spec.labels.size());
  PlainConvUNet net(spec.architecture);
  TensorMap weights;
  for (auto& p : net->named_parameters()) weights[p.key()] = p.value().detach();
  writeSafetensors(directory / spec.weightsFile, weights, {{"format", "pt"}, {"bundle", spec.name}}, storeAs);
  spec.weightsSha256 = sha256File(directory / spec.weightsFile);
  spec.directory = directory;
  saveBundleSpec(spec, directory / "bundle.yaml");
  return spec;
}

}  // namespace segnode::engine
