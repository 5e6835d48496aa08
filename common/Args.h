#pragma once
// Minimal "--key value" / "--flag" parsing for the CLI subcommands. Unknown options and missing
// values are errors that say which option and what it wants.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace segnode::cli {

class Args {
 public:
  // flags: options that take no value; valued: options that take one value.
  Args(const std::vector<std::string>& argv, const std::set<std::string>& flags, const std::set<std::string>& valued);

  bool flag(const std::string& name) const { return flags_.count(name) > 0; }
  std::optional<std::string> value(const std::string& name) const;
  std::string required(const std::string& name) const;
  int intValue(const std::string& name, int def, int min, int max) const;
  double doubleValue(const std::string& name, double def, double min, double max) const;

 private:
  std::set<std::string> flags_;
  std::map<std::string, std::string> values_;
};

std::vector<std::string> splitList(const std::string& s, char sep = ',');

}  // namespace segnode::cli
