#pragma once
// Logging by category, one line per event, to stderr (systemd's journal keeps it). The level is
// checked before the message is built: SEGNODE_LOG(Info, Dicom, "stored " << uid).
#include <sstream>
#include <string>

namespace segnode::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };
enum class Category { Dicom, Db, Route, Infer, Send, Train, App };

void setLevel(Level level);
bool enabled(Level level);
void write(Level level, Category category, const std::string& message);
bool parseLevel(const std::string& text, Level& out);

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
