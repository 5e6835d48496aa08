#pragma once
// Where the time of GPU work goes, for the probes of `distill --probe-batches`: lap(phase) waits
// for the device (the phase's kernels have run: a CUDA step otherwise returns before its work is
// done), then adds the seconds since the previous lap to the phase's total. A clock given no list
// does nothing at all, so the code it would time runs as it always does and never waits.
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include <c10/core/Device.h>

namespace segnode::training {

class PhaseClock {
 public:
  using Seconds = std::vector<std::pair<std::string, double>>;  // in the order the phases first ran
  PhaseClock(Seconds* into, c10::Device device);
  void lap(const char* phase);

 private:
  Seconds* into_;
  c10::Device device_;
  std::chrono::steady_clock::time_point last_;
};

// "name 1.2, name 3.4; total 4.6": every phase's seconds times `scale` (1e3 / n: ms for each of n).
std::string describePhases(const PhaseClock::Seconds& phases, double scale);

}  // namespace segnode::training
