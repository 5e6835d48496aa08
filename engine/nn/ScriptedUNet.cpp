#include "engine/nn/ScriptedUNet.h"

#include <sstream>

#include <torch/csrc/jit/api/module.h>

#include "common/Error.h"

namespace segnode::engine {
namespace {

std::string attr(const std::string& paramName) {
  std::string s = paramName;
  for (char& c : s)
    if (c == '.') c = '_';
  return s;
}

std::string list(const std::array<int, 3>& xyz) {  // TorchScript int list in tensor (z, y, x) order
  return "[" + std::to_string(xyz[2]) + ", " + std::to_string(xyz[1]) + ", " + std::to_string(xyz[0]) + "]";
}

void emitConvNormAct(std::ostringstream& src, const std::string& prefix, const std::array<int, 3>& kernel,
                     const std::array<int, 3>& stride, bool bias) {
  std::array<int, 3> pad{kernel[0] / 2, kernel[1] / 2, kernel[2] / 2};
  std::string p = attr(prefix);
  src << "    x = torch.conv3d(x, self." << p << "_conv_weight, " << (bias ? "self." + p + "_conv_bias" : "None") << ", "
      << list(stride) << ", " << list(pad) << ", [1, 1, 1], 1)\n";
  src << "    x = torch.instance_norm(x, self." << p << "_norm_weight, self." << p
      << "_norm_bias, None, None, True, 0.1, 1e-05, False)\n";
  src << "    x = torch.leaky_relu(x, 0.01)\n";
}

// Parameter names in the same order and spelling as PlainConvUNetImpl registers them.
std::vector<std::string> parameterNames(const ArchitectureSpec& a) {
  std::vector<std::string> names;
  auto cna = [&](const std::string& p) {
    for (const char* s : {".conv.weight", ".conv.bias", ".norm.weight", ".norm.bias"})
      if (a.convBias || std::string(s) != ".conv.bias") names.push_back(p + s);
  };
  const int n = a.stages();
  for (int s = 0; s < n; ++s)
    for (int c = 0; c < a.convsPerStage[size_t(s)]; ++c) cna("encoder." + std::to_string(s) + "." + std::to_string(c));
  for (int d = 0; d < n - 1; ++d) {
    int s = n - 2 - d;
    names.push_back("upsample." + std::to_string(d) + ".weight");
    names.push_back("upsample." + std::to_string(d) + ".bias");
    for (int c = 0; c < a.convsPerStageDecoder[size_t(s)]; ++c) cna("decoder." + std::to_string(d) + "." + std::to_string(c));
    names.push_back("heads." + std::to_string(d) + ".weight");
    names.push_back("heads." + std::to_string(d) + ".bias");
  }
  return names;
}

}  // namespace

std::string scriptedUNetSource(const ArchitectureSpec& a, bool bf16Upsample) {
  std::ostringstream src;
  const int n = a.stages();
  src << "def forward(self, x: Tensor) -> Tensor:\n";
  for (int s = 0; s < n; ++s) {
    for (int c = 0; c < a.convsPerStage[size_t(s)]; ++c)
      emitConvNormAct(src, "encoder." + std::to_string(s) + "." + std::to_string(c), a.kernelSizes[size_t(s)],
                      c == 0 ? a.strides[size_t(s)] : std::array<int, 3>{1, 1, 1}, a.convBias);
    if (s + 1 < n) src << "    skip" << s << " = x\n";
  }
  for (int d = 0; d < n - 1; ++d) {
    int s = n - 2 - d;
    std::string up = "upsample_" + std::to_string(d);
    src << "    x = torch.conv_transpose3d(" << (bf16Upsample ? "x.float()" : "x") << ", self." << up << "_weight, self." << up
        << "_bias, " << list(a.strides[size_t(s + 1)]) << ", [0, 0, 0], [0, 0, 0], 1, [1, 1, 1])"
        << (bf16Upsample ? ".to(15)" : "") << "\n";  // 15 = ScalarType::BFloat16
    src << "    x = torch.cat([x, skip" << s << "], 1)\n";
    for (int c = 0; c < a.convsPerStageDecoder[size_t(s)]; ++c)
      emitConvNormAct(src, "decoder." + std::to_string(d) + "." + std::to_string(c), a.kernelSizes[size_t(s)], {1, 1, 1},
                      a.convBias);
  }
  std::string head = "heads_" + std::to_string(n - 2);
  src << "    return torch.conv3d(x, self." << head << "_weight, self." << head
      << "_bias, [1, 1, 1], [0, 0, 0], [1, 1, 1], 1)\n";
  return src.str();
}

torch::jit::Module buildScriptedUNet(const ArchitectureSpec& spec, const TensorMap& weights, bool optimize,
                                     torch::ScalarType dtype) {
  torch::jit::Module m("SegnodePlainConvUNet");
  m.register_attribute("training", c10::BoolType::get(), false);
  for (const auto& name : parameterNames(spec)) {
    auto it = weights.find(name);
    if (it == weights.end()) throw Error(ErrorCode::BadBundle, "weights: tensor '" + name + "' is missing");
    const bool upsample = name.rfind("upsample.", 0) == 0;
    m.register_parameter(attr(name), it->second.to(upsample ? torch::kFloat : dtype).contiguous(), false);
  }
  m.define(scriptedUNetSource(spec, dtype == torch::kBFloat16));
  m.eval();
  if (!optimize) return m;
  torch::jit::Module frozen = torch::jit::freeze(m);
  return torch::jit::optimize_for_inference(frozen);
}

}  // namespace segnode::engine
