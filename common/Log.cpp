#include "common/Log.h"

#include <atomic>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>
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
  static const char* names[] = {"dicom", "db", "route", "infer", "send", "train", "app"};
  return names[int(c)];
}
thread_local std::vector<std::pair<std::string, std::string>> t_fields;
}  // namespace

Scope::Scope(std::initializer_list<std::pair<std::string, std::string>> fields) : count_(fields.size()) {
  t_fields.insert(t_fields.end(), fields.begin(), fields.end());
}

Scope::~Scope() { t_fields.resize(t_fields.size() - count_); }

std::string logfmtValue(const std::string& v) {
  bool bare = !v.empty();
  for (char c : v)
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) bare = false;
  if (bare) return v;
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') out += "\\n";
    else out += c;
  }
  return out + "\"";
}

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
  std::string fields;
  for (const auto& [key, value] : t_fields) fields += key + "=" + logfmtValue(value) + " ";
  std::lock_guard<std::mutex> lock(g_mutex);
  std::fprintf(stderr, "ts=%s.%03dZ level=%s part=%s %smsg=%s\n", stamp, int(tv.tv_usec / 1000), levelName(level),
               categoryName(category), fields.c_str(), logfmtValue(message).c_str());
}

}  // namespace segnode::log
