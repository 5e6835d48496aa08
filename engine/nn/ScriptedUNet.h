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

// TorchScript source of forward() for the spec (exposed for tests and curiosity). With
// bf16Upsample the transposed convolutions run in float32 between bf16 layers: LibTorch 1.13's
// bf16 conv_transpose3d on CPU returns the wrong output size.
std::string scriptedUNetSource(const ArchitectureSpec& spec, bool bf16Upsample = false);

// weights: the eager module's parameter names -> tensors (float32). Throws Error(BadBundle) on a
// missing tensor or wrong shape.
torch::jit::Module buildScriptedUNet(const ArchitectureSpec& spec, const TensorMap& weights, bool optimize,
                                     torch::ScalarType dtype = torch::kFloat);

}  // namespace segnode::engine
