#include "common/Terminal.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace segnode::cli {

ProgressLine::ProgressLine(std::string label)
    : label_(std::move(label)), enabled_(isatty(STDERR_FILENO) == 1), start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(int64_t done, int64_t total) {
  if (!enabled_) return;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double eta = done > 0 ? elapsed * double(total - done) / double(done) : 0;
  std::fprintf(stderr, "\r%s: tiles %lld/%lld, %.0f s elapsed, ETA %.0f s   ", label_.c_str(), (long long)done,
               (long long)total, elapsed, eta);
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::finish() {
  if (shown_) std::fprintf(stderr, "\n");
  shown_ = false;
}

bool resetPeakRss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return bool(f);
}

namespace {
int64_t statusKb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream in(line.substr(key.size() + 1));
      int64_t kb = 0;
      in >> kb;
      return kb;
    }
  }
  return 0;
}
}  // namespace

int64_t peakRssBytes() { return statusKb("VmHWM") * 1024; }
int64_t currentRssBytes() { return statusKb("VmRSS") * 1024; }

}  // namespace segnode::cli
