// segnode: the admin and offline command line (DESIGN §2). Wiring only: each subcommand lives in
// its own cmd_*.cpp.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "common/Error.h"
#include "daemon/cli/Commands.h"
#include "engine/TensorCache.h"

namespace {

const char* kUsage =
    "usage: segnode <command> [options]\n"
    "\n"
    "commands:\n"
    "  segment   segment one volume (NIfTI, or a folder holding one DICOM series) with an installed model\n"
    "            --model NAME[@VERSION] --input IN.nii[.gz]|DIR --output OUT.nii[.gz]\n"
    "            [--threads N] [--step S] [--mirror] [--backend onednn|script|eager] [--precision fp32|bf16]\n"
    "            [--models-dir DIR]\n"
    "  bench     time models side by side on one volume, interleaved, after warm-up\n"
    "            --models A,B[:onednn|:script|:eager][:fp32|:bf16],... --input IN.nii[.gz]|DIR [--repeat N] [--threads N]\n"
    "            [--step S] [--warmup N] [--json] [--models-dir DIR]\n"
    "  convert   a DICOM series folder -> the NIfTI volume the node segments: --input DIR --output OUT.nii[.gz]\n"
    "  models    list installed model bundles [--json] [--verify] [--models-dir DIR]\n"
    "  models init   make a bundle with RANDOM weights from a template (tests, benchmarks)\n"
    "            --template FILE --name NAME --version X.Y.Z [--width-divisor D] [--min-features N]\n"
    "            [--seed S] [--fp16] [--models-dir DIR]\n"
    "  status    queue depths by state, workers, last errors [--json] [--config FILE]\n"
    "  jobs      recent jobs [--state S] [--limit N] [--json] [--config FILE]\n"
    "  retry     re-queue a job's failed deliveries: retry JOB | retry --dead [--config FILE]\n"
    "\n"
    "Models are looked up in --models-dir, else $SEGNODE_MODELS_DIR, else ./etc/models.\n"
    "Exit codes: 0 ok, 64 usage, 65 bad input/bundle, 66 not found, 70 internal, 74 I/O, 78 config.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 64 : 0;
  }
  // SEGNODE_NO_TENSOR_CACHE=1 measures the difference (docs/benchmarks.md).
  if (!std::getenv("SEGNODE_NO_TENSOR_CACHE")) segnode::engine::installTensorCache();
  std::string command = argv[1];
  segnode::cli::ArgList args(argv + 2, argv + argc);
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
  try {
    if (command == "segment") return segnode::cli::runSegment(args, argv[0]);
    if (command == "convert") return segnode::cli::runConvert(args, argv[0]);
    if (command == "bench") return segnode::cli::runBench(args, argv[0]);
    if (command == "models") return segnode::cli::runModels(args, argv[0]);
    if (command == "status") return segnode::cli::runStatus(args, argv[0]);
    if (command == "jobs") return segnode::cli::runJobs(args, argv[0]);
    if (command == "retry") return segnode::cli::runRetry(args, argv[0]);
    std::fprintf(stderr, "segnode: unknown command '%s'\n\n%s", command.c_str(), kUsage);
    return 64;
  } catch (const segnode::Error& e) {
    std::fprintf(stderr, "segnode %s: %s: %s\n", command.c_str(), segnode::toString(e.code()), e.what());
    return segnode::exitCodeFor(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "segnode %s: internal error: %s\n", command.c_str(), e.what());
    return 70;
  }
}
