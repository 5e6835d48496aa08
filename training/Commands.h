#pragma once
// segnode-distill subcommands (one file each): each function declares its subcommands (CLI11),
// whose callbacks run them.
#include "common/Cli.h"

namespace segnode::distill {
struct DataOptions;  // training/Data.h

void addPlan(CLI::App& app);  // plan and synth
void addTrain(CLI::App& app);  // train and distill
void addEvaluate(CLI::App& app);  // evaluate and export
void addCalibrate(CLI::App& app);  // int8 calibration (oneDNN builds only)
// --labels --images --table --prior-probability --real-probability --device --val-labels, as "Data".
void addDataOptions(CLI::App& sub, DataOptions& o);
}  // namespace segnode::distill
