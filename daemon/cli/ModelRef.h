#pragma once
// Shared by the subcommands that load models: where the store is, which backend, and how many
// intra-op threads (LibTorch defaults to one here; we always set it).
#include <string>

#include "common/Cli.h"
#include "engine/Model.h"
#include "engine/ModelStore.h"
#include "engine/Segmenter.h"

namespace segnode::cli {

// What segment and bench share: --input, --models-dir, --threads (default: all cores), --step.
struct RunOptions {
  std::string input, modelsDir;  // modelsDir empty: engine::defaultModelsDir
  int threads = 1;
  engine::SegmentOptions segment;
};
void addRunOptions(CLI::App& sub, RunOptions& o);
engine::ModelStore modelStore(const std::string& modelsDir, const char* argv0);
engine::Backend backendOption(const std::string& text);
void warnIfUntrained(const engine::BundleSpec& spec);
// --precision fp32|bf16, else (empty) the bundle's inference.precision.
engine::Precision precisionOption(const std::string& text, const engine::BundleSpec& spec);

}  // namespace segnode::cli
