#include "common/Args.h"

#include <cstdlib>

#include "common/Error.h"

namespace segnode::cli {

Args::Args(const std::vector<std::string>& argv, const std::set<std::string>& flags, const std::set<std::string>& valued) {
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    std::string name = a, inlineValue;
    bool hasInline = false;
    if (auto eq = a.find('='); a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      inlineValue = a.substr(eq + 1);
      hasInline = true;
    }
    if (flags.count(name) && !hasInline) {
      flags_.insert(name);
    } else if (valued.count(name)) {
      if (hasInline) values_[name] = inlineValue;
      else if (i + 1 < argv.size()) values_[name] = argv[++i];
      else throw Error(ErrorCode::InvalidArgument, "option " + name + " needs a value");
    } else {
      throw Error(ErrorCode::InvalidArgument, "unknown option '" + a + "' (see --help)");
    }
  }
}

std::optional<std::string> Args::value(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::required(const std::string& name) const {
  auto v = value(name);
  if (!v || v->empty()) throw Error(ErrorCode::InvalidArgument, "option " + name + " is required");
  return *v;
}

int Args::intValue(const std::string& name, int def, int min, int max) const {
  auto v = value(name);
  if (!v) return def;
  char* end = nullptr;
  long n = std::strtol(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0' || n < min || n > max)
    throw Error(ErrorCode::InvalidArgument, "option " + name + " must be an integer in " + std::to_string(min) + ".." +
                                                std::to_string(max) + ", got '" + *v + "'");
  return int(n);
}

double Args::doubleValue(const std::string& name, double def, double min, double max) const {
  auto v = value(name);
  if (!v) return def;
  char* end = nullptr;
  double d = std::strtod(v->c_str(), &end);
  if (end == v->c_str() || *end != '\0' || !(d >= min && d <= max))
    throw Error(ErrorCode::InvalidArgument, "option " + name + " must be a number in [" + std::to_string(min) + ", " +
                                                std::to_string(max) + "], got '" + *v + "'");
  return d;
}

std::vector<std::string> splitList(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace segnode::cli
