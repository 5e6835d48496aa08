// segnode-distill: synthesis, plans, teacher training, distillation, evaluation, export
// (DESIGN §6). Wiring only: each subcommand lives in its own cmd_*.cpp.
#include "training/Commands.h"

int main(int argc, char** argv) {
  CLI::App app{"segnode-distill: synthesis, plans, teacher training, distillation, evaluation, export",
               "segnode-distill"};
  segnode::cli::setUp(app, "Exit codes: 0 ok, 64 usage, 65 bad input/bundle, 66 not found, 70 internal, 74 I/O.");
  segnode::distill::addPlan(app);
  segnode::distill::addTrain(app);
  segnode::distill::addEvaluate(app);
#ifdef SEGNODE_WITH_ONEDNN
  segnode::distill::addCalibrate(app);
#endif
  return segnode::cli::run(app, argc, argv);
}
