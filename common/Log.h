#pragma once
// Logging by category, one line per event, to stderr (systemd's journal keeps it), in logfmt:
//   ts=2026-12-01T14:19:25.989Z level=info part=infer job=1 series=1.2.3 msg="job 1 done"
// The level is checked before the message is built: SEGNODE_LOG(Info, Dicom, "stored " << uid).
// A log::Scope adds its fields to every line its thread writes while it lives (a worker's job and
// series, a sender's job and destination), so every line of a job says which one. UIDs and AE
// titles only: no patient name or ID is ever logged.
#include <initializer_list>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace segnode::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Category { Dicom, Db, Route, Infer, Send, Train, App };

void setLevel(Level level);
bool enabled(Level level);
void write(Level level, Category category, const std::string& message);
bool parseLevel(const std::string& text, Level& out);

class Scope {
 public:
  Scope(std::initializer_list<std::pair<std::string, std::string>> fields);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  size_t count_;
};

// One logfmt value: bare when it needs no quoting, else quoted with \ \" \n escaped.
std::string logfmtValue(const std::string& value);

}  // namespace segnode::log

#define SEGNODE_LOG(level, category, expr)                                                      \
  do {                                                                                          \
    if (::segnode::log::enabled(::segnode::log::Level::level)) {                                \
      std::ostringstream segnode_log_stream_;                                                   \
      segnode_log_stream_ << expr;                                                              \
      ::segnode::log::write(::segnode::log::Level::level, ::segnode::log::Category::category,   \
                            segnode_log_stream_.str());                                         \
    }                                                                                           \
  } while (0)
