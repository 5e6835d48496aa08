#include "common/Log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <sys/time.h>

namespace segnode::log {
namespace {
std::atomic<int> g_level{int(Level::Info)};
std::mutex g_mutex;
const char* levelName(Level l) {
  static const char* names[] = {"debug", "info", "warn", "error"};
  return names[int(l)];
}
const char* categoryName(Category c) {
  static const char* names[] = {"DICOM", "DB", "ROUTE", "INFER", "SEND", "TRAIN", "APP"};
  return names[int(c)];
}
}  // namespace

void setLevel(Level level) { g_level = int(level); }
bool enabled(Level level) { return int(level) >= g_level.load(std::memory_order_relaxed); }

bool parseLevel(const std::string& text, Level& out) {
  for (int i = 0; i < 4; ++i)
    if (text == levelName(Level(i))) {
      out = Level(i);
      return true;
    }
  return false;
}

void write(Level level, Category category, const std::string& message) {
  timeval tv{};
  gettimeofday(&tv, nullptr);
  std::tm tm{};
  gmtime_r(&tv.tv_sec, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "%s.%03dZ %-5s %-5s %s\n", stamp, int(tv.tv_usec / 1000), levelName(level), categoryName(category),
               message.c_str());
}

}  // namespace segnode::log
