#include "training/Prune.h"

#include <algorithm>
#include <numeric>
#include <optional>
#include <string>

#include "common/Error.h"

namespace segnode::training {
namespace {

using Index = torch::Tensor;  // int64 channel indices, ascending

// The `keep` largest of `importance` (one value per channel), in ascending channel order.
Index topChannels(const torch::Tensor& importance, int64_t keep) {
  auto order = std::get<1>(importance.to(torch::kCPU).to(torch::kDouble).sort(/*dim=*/0, /*descending=*/true));
  return std::get<0>(order.slice(0, 0, keep).sort());
}

class Pruner {
 public:
  // Without a student it only selects channels (the indices of decoderChannels).
  Pruner(engine::PlainConvUNet& teacher, engine::PlainConvUNet* student) : from_(teacher->named_parameters()) {
    if (student) to_ = (*student)->named_parameters();
  }

  // conv -> norm -> act `prefix` (encoder.S.C or decoder.D.C): keeps `keep` outputs; returns them.
  Index convNormAct(const std::string& prefix, const Index& in, int64_t keep) {
    Index out = topChannels(get(prefix + ".norm.weight").abs(), keep);
    copy(prefix + ".conv.weight", {out, in});
    if (from_.contains(prefix + ".conv.bias")) copy(prefix + ".conv.bias", {out});
    copy(prefix + ".norm.weight", {out});
    copy(prefix + ".norm.bias", {out});
    return out;
  }
  // Transposed conv `prefix` (weights [in, out, k...]): keeps `keep` outputs.
  Index upsample(const std::string& prefix, const Index& in, int64_t keep) {
    Index out = topChannels(get(prefix + ".weight").abs().sum({0, 2, 3, 4}), keep);
    copy(prefix + ".weight", {in, out});
    copy(prefix + ".bias", {out});
    return out;
  }
  void head(const std::string& prefix, const Index& in) {
    copy(prefix + ".weight", {torch::Tensor(), in});
    copy(prefix + ".bias", {torch::Tensor()});
  }

 private:
  const torch::Tensor& get(const std::string& name) {
    auto* t = from_.find(name);
    if (!t) throw Error(ErrorCode::InvalidArgument, "pruning: the teacher has no tensor '" + name + "'");
    return *t;
  }
  // student[name] = teacher[name] indexed by `dims` (undefined: the whole dimension).
  void copy(const std::string& name, const std::vector<Index>& dims) {
    if (!to_) return;
    torch::Tensor t = get(name).detach().to(torch::kCPU);
    for (size_t d = 0; d < dims.size(); ++d)
      if (dims[d].defined()) t = t.index_select(int64_t(d), dims[d]);
    auto* dst = to_->find(name);
    if (!dst || dst->sizes() != t.sizes())
      throw Error(ErrorCode::InvalidArgument, "pruning: '" + name + "' does not fit the student");
    torch::NoGradGuard ng;
    dst->copy_(t);
  }
  torch::OrderedDict<std::string, torch::Tensor> from_;
  std::optional<torch::OrderedDict<std::string, torch::Tensor>> to_;
};

void checkCompatible(const engine::ArchitectureSpec& t, const engine::ArchitectureSpec& s) {
  bool same = t.stages() == s.stages() && t.kernelSizes == s.kernelSizes && t.strides == s.strides &&
              t.convsPerStage == s.convsPerStage && t.convsPerStageDecoder == s.convsPerStageDecoder &&
              t.inChannels == s.inChannels && t.numClasses == s.numClasses && t.convBias == s.convBias;
  for (int i = 0; same && i < s.stages(); ++i) same = s.features[size_t(i)] <= t.features[size_t(i)];
  if (!same)
    throw Error(ErrorCode::InvalidArgument,
                "pruning needs a student of the teacher's depth, kernels, strides and classes, with fewer features");
}

// Selects (and, given a student, copies) every layer's channels; returns the teacher channels of
// each decoder stage's output, full resolution first.
std::vector<Index> prune(engine::PlainConvUNet& teacher, const engine::ArchitectureSpec& arch,
                         engine::PlainConvUNet* student) {
  const auto& ta = teacher->spec();
  checkCompatible(ta, arch);
  Pruner p(teacher, student);
  std::vector<Index> decoderOutputs;
  const int n = arch.stages();
  Index in = torch::arange(int64_t(arch.inChannels));
  std::vector<Index> skips;
  for (int s = 0; s < n; ++s) {
    for (int c = 0; c < arch.convsPerStage[size_t(s)]; ++c)
      in = p.convNormAct("encoder." + std::to_string(s) + "." + std::to_string(c), in, arch.features[size_t(s)]);
    skips.push_back(in);
  }
  for (int d = 0; d + 1 < n; ++d) {
    const int s = n - 2 - d;
    const std::string D = std::to_string(d);
    Index up = p.upsample("upsample." + D, in, arch.features[size_t(s)]);
    // The first decoder conv sees cat(upsampled, skip): the skip's channels sit after the
    // teacher's upsampled ones.
    in = torch::cat({up, skips[size_t(s)] + int64_t(ta.features[size_t(s)])});
    for (int c = 0; c < arch.convsPerStageDecoder[size_t(s)]; ++c)
      in = p.convNormAct("decoder." + D + "." + std::to_string(c), in, arch.features[size_t(s)]);
    p.head("heads." + D, in);
    decoderOutputs.push_back(in);
  }
  std::reverse(decoderOutputs.begin(), decoderOutputs.end());
  return decoderOutputs;
}

}  // namespace

engine::PlainConvUNet pruneFromTeacher(engine::PlainConvUNet& teacher, const engine::ArchitectureSpec& arch) {
  engine::PlainConvUNet student(arch);
  prune(teacher, arch, &student);
  return student;
}

std::vector<torch::Tensor> decoderChannels(engine::PlainConvUNet& teacher, const engine::ArchitectureSpec& arch) {
  return prune(teacher, arch, nullptr);
}

}  // namespace segnode::training
