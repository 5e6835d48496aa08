#pragma once
// The safetensors file format: an 8-byte little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets}, then the raw little-endian bytes. Readable from
// Python (safetensors, or json + numpy) and independent of the LibTorch version that wrote it.
#include <filesystem>
#include <map>
#include <string>

#include <torch/types.h>

namespace segnode::engine {

using TensorMap = std::map<std::string, torch::Tensor>;

// Validates the header completely (offsets inside the file, sizes matching shapes, no overlap)
// before touching data; errors name the file and the tensor. F64/F32/F16/BF16 and integer types.
TensorMap readSafetensors(const std::filesystem::path& path);

// Writes every tensor converted to `storeAs` (kFloat or kHalf for weights).
void writeSafetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const std::map<std::string, std::string>& metadata, torch::ScalarType storeAs);

}  // namespace segnode::engine
