#pragma once
// Which arithmetic a bundle runs in on this machine, decided by measurement (issue 14): a rule
// such as "bf16 where the CPU flag is there" was 1.5x slower than fp32 on an AVX512-BF16 Xeon and
// faster on a Zen 4, so only a timing on the CPU itself knows. A bundle allows a precision other
// than fp32 only when it records its validation Dice in it within the guard
// (metrics.precision_guard.<name>.passed, written by `segnode-distill export --guard`). The
// choice is cached per CPU (cpuKey) and bundle (reference + weights sha256) in a JSON file of the
// node's state directory, so it is measured once per machine and bundle.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"

namespace segnode::engine {

std::vector<Precision> allowedPrecisions(const BundleSpec& spec);  // fp32 first
std::string cpuModelName();                                         // /proc/cpuinfo "model name"
// The cache's key for this CPU: the model name and the instruction set oneDNN runs on. A virtual
// machine's model name can be as plain as "Intel(R) Xeon(R) Processor" on hosts with and without
// AMX, where bf16 is 3.8x faster or 1.3x slower than fp32; a VM moved to another host, or
// ONEDNN_MAX_CPU_ISA set, must measure again instead of keeping the other machine's choice.
std::string cpuKey();

struct PrecisionChoice {
  Precision chosen = Precision::Float32;
  std::vector<std::pair<Precision, double>> secondsPerTile;  // what was measured (best of 3, one tile)
  std::string how;  // measured | cached | pinned | only fp32 allowed
  std::string summary() const;  // "bf16 (measured: fp32 0.412 s, bf16 0.298 s per tile)"
};

// `pinned`: the config's choice, used as is (a precision the bundle does not allow is used too,
// with a note in `how`). Otherwise the cached choice for this CPU and bundle, else a measurement
// of every allowed precision (written to `cacheFile`; "" = no cache). Threads: the caller's.
PrecisionChoice choosePrecision(const BundleSpec& spec, const std::filesystem::path& cacheFile,
                                std::optional<Precision> pinned = std::nullopt);
// The cached choice alone (segnode models), without measuring.
std::optional<PrecisionChoice> cachedPrecision(const BundleSpec& spec, const std::filesystem::path& cacheFile);

}  // namespace segnode::engine
