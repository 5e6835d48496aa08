#pragma once
// What a long-running CLI command shows a person: a progress line on stderr (only when stderr is
// a terminal, so logs and pipes stay clean) and the process's memory high-water mark.
#include <chrono>
#include <cstdint>
#include <string>

namespace segnode::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  ~ProgressLine();
  void update(int64_t done, int64_t total);  // "label: tiles 5/27, ETA 42 s"
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_;
};

// Resets the kernel's peak-RSS counter (VmHWM) to the current RSS, so a following peakRssBytes()
// measures one piece of work inside a long-lived process. Returns false where the kernel refuses.
bool resetPeakRss();
int64_t peakRssBytes();
int64_t currentRssBytes();

}  // namespace segnode::cli
