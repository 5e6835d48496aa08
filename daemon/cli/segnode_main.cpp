// segnode: the admin and offline command line (DESIGN §2). Wiring only: each subcommand lives in
// its own cmd_*.cpp.
#include <cstdio>
#include <cstdlib>

#include "common/Version.h"
#include "daemon/cli/Commands.h"
#include "engine/TensorCache.h"

int main(int argc, char** argv) {
  using namespace segnode::cli;
  CLI::App app{"segnode: the admin and offline command line of the segmentation node", "segnode"};
  setUp(app, "Models are looked up in --models-dir, else $SEGNODE_MODELS_DIR, else ./etc/models.\n"
             "Exit codes: 0 ok, 64 usage, 65 bad input/bundle, 66 not found, 70 internal, 74 I/O, 78 config.");
  app.set_version_flag("--version", std::string("segnode ") + segnode::version());
  addSegment(app, argv[0]);
  addBench(app, argv[0]);
  addModels(app, argv[0]);
  addAdmin(app);
  app.add_subcommand("help", "print this help")->callback([&app] {
    std::fputs(app.get_formatter()->make_help(&app, "segnode", CLI::AppFormatMode::Normal).c_str(), stdout);
  });
  // SEGNODE_NO_TENSOR_CACHE=1 measures the difference (docs/benchmarks.md).
  if (!std::getenv("SEGNODE_NO_TENSOR_CACHE")) segnode::engine::installTensorCache();
  return run(app, argc, argv);
}
