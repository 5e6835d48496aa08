#pragma once
// segnode-distill subcommands (one file each); each returns the process exit code.
#include <string>
#include <vector>

namespace segnode::distill {
using ArgList = std::vector<std::string>;
int runPlan(const ArgList& args);
int runSynth(const ArgList& args);
int runTrain(const ArgList& args);
int runDistill(const ArgList& args);
int runEvaluate(const ArgList& args);
int runExport(const ArgList& args);
}  // namespace segnode::distill
