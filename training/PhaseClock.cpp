#include "training/PhaseClock.h"

#include <algorithm>
#include <cstdio>

#include <c10/core/impl/VirtualGuardImpl.h>

namespace segnode::training {

PhaseClock::PhaseClock(Seconds* into, c10::Device device)
    : into_(into), device_(device), last_(std::chrono::steady_clock::now()) {}

void PhaseClock::lap(const char* phase) {
  if (!into_) return;
  // The kernels this thread queued so far belong to the phase: wait for them (CPU work is done).
  if (device_.is_cuda()) c10::impl::VirtualGuardImpl(device_.type()).getStream(device_).synchronize();
  const auto now = std::chrono::steady_clock::now();
  const double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  auto it = std::find_if(into_->begin(), into_->end(), [&](const auto& e) { return e.first == phase; });
  if (it == into_->end()) into_->emplace_back(phase, seconds);
  else it->second += seconds;
}

std::string describePhases(const PhaseClock::Seconds& phases, double scale) {
  std::string out;
  double total = 0;
  for (const auto& [phase, seconds] : phases) {
    char part[96];
    std::snprintf(part, sizeof part, "%s%s %.1f", out.empty() ? "" : ", ", phase.c_str(), scale * seconds);
    out += part;
    total += seconds;
  }
  char end[48];
  std::snprintf(end, sizeof end, "; total %.0f", scale * total);
  return out + end;
}

}  // namespace segnode::training
