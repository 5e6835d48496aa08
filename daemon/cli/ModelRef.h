#pragma once
// Shared by the subcommands that load models: where the store is, which backend, and how many
// intra-op threads (LibTorch defaults to one here; we always set it).
#include <string>

#include "common/Args.h"
#include "engine/Model.h"
#include "engine/ModelStore.h"

namespace segnode::cli {

engine::ModelStore modelStore(const Args& args, const char* argv0);
engine::Backend backendOption(const std::string& text);
int applyThreads(const Args& args);  // --threads N, default: all cores; returns the count
void warnIfUntrained(const engine::BundleSpec& spec);
// --precision fp32|bf16, else the bundle's inference.precision.
engine::Precision precisionOption(const std::optional<std::string>& text, const engine::BundleSpec& spec);

}  // namespace segnode::cli
