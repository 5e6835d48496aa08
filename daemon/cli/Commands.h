#pragma once
#include <ctime>
#include <string>
// One function per `segnode` subcommand: it declares the subcommand (CLI11), whose callback runs
// it. Errors are thrown as segnode::Error and turned into a message + exit code by cli::run only.
#include "common/Cli.h"

namespace segnode::cli {

void addSegment(CLI::App& app, const char* argv0);  // segment and convert
void addBench(CLI::App& app, const char* argv0);
void addModels(CLI::App& app, const char* argv0);  // models and models init
// "2026-12-01T08:30:00Z": the CLI's one way to print a time (epoch seconds, UTC).
std::string isoUtc(std::time_t epochSeconds);
// The node's config when --config is not given: ./etc/segnode.yaml (a checkout), else the package's.
std::string defaultConfigFile();
void addAdmin(CLI::App& app);                      // status, jobs, retry, backup, audit

}  // namespace segnode::cli
