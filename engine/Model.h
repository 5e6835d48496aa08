#pragma once
// A loaded, checked model bundle ready to run: bundle.yaml + weights verified against their
// sha256, every tensor matched by name and shape to the architecture.
#include <filesystem>
#include <memory>

#include <torch/types.h>

#include "engine/BundleSpec.h"

namespace segnode::engine {

enum class Backend {
  Eager,        // torch::nn modules, as in training
  TorchScript,  // generated TorchScript, frozen + optimize_for_inference
  OneDnn,       // oneDNN primitives driven directly, channels-last throughout (nn/DnnlUNet.h)
};

// OneDnn where the engine was built with oneDNN's headers (Debian's libdnnl-dev, the library
// LibTorch itself runs on), else TorchScript.
Backend defaultBackend();
// bf16 pays only where the CPU computes it natively (AVX512-BF16 or AMX). Elsewhere it is
// emulated, slower than float32, so a bf16 bundle runs in float32 there (with a warning).
bool cpuHasNativeBf16();
// 8-bit dot products (AVX512-VNNI, AVX-VNNI or AMX-INT8): without them oneDNN's int8 path is
// emulated and loses its reason to exist.
bool cpuHasInt8Dot();
const char* toString(Backend b);

class SegmentationModel {
 public:
  // Refuses (Error BadBundle, naming the file) weights that fail their checksum, miss a tensor,
  // carry an unexpected one, or have a wrong shape.
  static std::shared_ptr<SegmentationModel> load(const BundleSpec& spec, Backend backend = defaultBackend());
  // The same with the arithmetic overridden (spec.inference.precision is the default).
  static std::shared_ptr<SegmentationModel> load(const BundleSpec& spec, Backend backend, Precision precision);

  // [N, in_channels, z, y, x] float32 -> logits [N, classes, z, y, x]. Callers hold an
  // InferenceMode guard. Safe to call from several threads at once.
  torch::Tensor forward(const torch::Tensor& x) const;

  const BundleSpec& spec() const { return spec_; }
  Backend backend() const { return backend_; }
  Precision precision() const { return precision_; }  // what runs (bf16, int8 fall back where not native)
  // Int8 calibration on one input (onednn backend only): DnnlUNet::calibrationAbsmax.
  std::vector<std::vector<double>> calibrationAbsmax(const torch::Tensor& x, double percentile = 100) const;
  int64_t parameterCount() const { return parameterCount_; }

  struct Impl;
  ~SegmentationModel();

 private:
  SegmentationModel(BundleSpec spec, Backend backend);
  BundleSpec spec_;
  Backend backend_;
  Precision precision_ = Precision::Float32;
  int64_t parameterCount_ = 0;
  std::unique_ptr<Impl> impl_;
};

// Writes weights (random if `seed` is given and no weights are passed) and bundle.yaml into
// `directory`, filling in the sha256. Used by training export and by tests that need a bundle.
// storeAs: torch::kFloat or torch::kHalf.
BundleSpec writeRandomBundle(BundleSpec spec, const std::filesystem::path& directory, uint64_t seed,
                             torch::ScalarType storeAs = torch::kFloat);

}  // namespace segnode::engine
