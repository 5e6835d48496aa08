// segnode-distill: synthesis, plans, teacher training, distillation, evaluation, export
// (DESIGN §6). Wiring only: each subcommand lives in its own cmd_*.cpp.
#include <cstdio>
#include <cstring>
#include <exception>

#include "common/Error.h"
#include "training/Commands.h"

namespace {
const char* kUsage =
    "usage: segnode-distill <command> [options]\n"
    "\n"
    "  plan      dataset fingerprint -> plan YAML (nnU-Net v2 rules)\n"
    "            --template T.yaml --labels A,B,... [--images A,B,...] [--gpu-memory-gb G] [--out plan.yaml]\n"
    "  synth     write synthetic image/label NIfTI pairs from label maps (whole foreground, fixed seed)\n"
    "            --template T.yaml --labels A,... [--table TSV | --images A,...] --out DIR [--seed S]\n"
    "            [--recipes t1-1mm,t2like-1mm,t1-3mm-axial,random-1x1x4mm,real] [--device cpu|cuda]\n"
    "  train     train the teacher on synthetic data, write its bundle (EMA weights) under OUT/NAME/VERSION\n"
    "            --template T.yaml --plan P.yaml --labels A,... [--table TSV | --images A,...] --out DIR\n"
    "            --name NAME [--version X.Y.Z] [--init BUNDLE] [--fp16] + the schedule options below\n"
    "  distill   train students (features / 2^t) from a teacher bundle, together on the same batches\n"
    "            --teacher DIR --labels A,... [--table TSV | --images A,...] --out DIR [--divisors 2,4,8]\n"
    "            [--min-features 4] [--max-params N | --latency-budget S --latency-input IN.nii.gz] [--dry-run]\n"
    "            per student (one value, or one per divisor): [--names N,...] [--init teacher|scratch]\n"
    "            [--kd-weight 1] [--gradient-weight 10] [--supervised-weight 1] [--kd-balance inverse-frequency|none]\n"
    "            for all: [--temperature 2] [--edge-operator sobel|prewitt] [--edge-weight 4] [--kd-ramp 0]\n"
    "            [--probe-batches 2,4,8] (measure samples/s per batch size, print probe_best_batch=B, train nothing)\n"
    "  schedule  (train, distill) [--iterations N] planned total; [--lr 0.01] [--lr-warmup N] [--batch B]\n"
    "            [--patch X,Y,Z] [--optimizer sgd|adamw] [--weight-decay W] [--ema-decay 0.999] [--seed S]\n"
    "            [--precision bf16|fp32] this call only: [--stop-after N] [--time-budget SECONDS]\n"
    "            [--resume] continue OUT/work exactly; [--extend] with --resume: raise the planned total to\n"
    "            --iterations (recorded); [--val-labels A,B] validation curves every [--validate-every N]\n"
    "            [--checkpoint-every N] [--log-every N] [--device cpu|cuda] [--prior-probability P]\n"
    "            [--real-probability P]\n"
    "  evaluate  Dice and HD95 per label for bundles on image/label cases; Markdown, CSV and a plot\n"
    "            --bundles DIR,DIR,... --cases cases.yaml --out DIR [--threads N]\n"
    "  export    install a trained bundle into a models directory with its measured metrics\n"
    "            --bundle DIR [--metrics NAME-VERSION.metrics.yaml] [--template T.yaml] [--version X.Y.Z]\n            [--description TEXT] [--fp16] [--models-dir etc/models]\n"
    "\n"
    "Exit codes: 0 ok, 64 usage, 65 bad input/bundle, 66 not found, 70 internal, 74 I/O.\n";
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 64 : 0;
  }
  std::string command = argv[1];
  segnode::distill::ArgList args(argv + 2, argv + argc);
  try {
    if (command == "plan") return segnode::distill::runPlan(args);
    if (command == "synth") return segnode::distill::runSynth(args);
    if (command == "train") return segnode::distill::runTrain(args);
    if (command == "distill") return segnode::distill::runDistill(args);
    if (command == "evaluate") return segnode::distill::runEvaluate(args);
    if (command == "export") return segnode::distill::runExport(args);
    std::fprintf(stderr, "segnode-distill: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 64;
  } catch (const segnode::Error& e) {
    std::fprintf(stderr, "segnode-distill %s: %s: %s\n", command.c_str(), segnode::toString(e.code()), e.what());
    return segnode::exitCodeFor(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "segnode-distill %s: internal error: %s\n", command.c_str(), e.what());
    return 70;
  }
}
