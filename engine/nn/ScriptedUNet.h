#pragma once
// The same PlainConvUNet as a TorchScript module, generated from the architecture spec and the
// trained weights, then frozen and passed through optimize_for_inference (oneDNN weight
// prepacking and op fusion). Inference only; the eager module stays the reference and is what
// training uses. Outputs match the eager module to float tolerance (tested).
#include <string>

#include <torch/script.h>

#include "engine/BundleSpec.h"
#include "engine/Safetensors.h"

namespace segnode::engine {

// TorchScript source of forward() for the spec (exposed for tests and curiosity).
std::string scriptedUNetSource(const ArchitectureSpec& spec);

// weights: the eager module's parameter names -> tensors (float32). Throws Error(BadBundle) on a
// missing tensor or wrong shape.
torch::jit::Module buildScriptedUNet(const ArchitectureSpec& spec, const TensorMap& weights, bool optimize);

}  // namespace segnode::engine
