#pragma once
// One function per `segnode` subcommand. Each returns the process exit code; errors are thrown
// as segnode::Error and turned into a message + exit code in main() only.
#include <string>
#include <vector>

namespace segnode::cli {

using ArgList = std::vector<std::string>;

int runSegment(const ArgList& args, const char* argv0);
int runConvert(const ArgList& args, const char* argv0);
int runBench(const ArgList& args, const char* argv0);
int runModels(const ArgList& args, const char* argv0);
int runStatus(const ArgList& args, const char* argv0);
int runJobs(const ArgList& args, const char* argv0);
int runRetry(const ArgList& args, const char* argv0);

}  // namespace segnode::cli
