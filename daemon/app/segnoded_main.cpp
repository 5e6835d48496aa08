// segnoded: the DICOM node daemon. Arguments and exit codes here; the wiring is app::Node.
#include <cstdio>

#include "common/Cli.h"
#include "common/Error.h"
#include "common/Log.h"
#include "common/Version.h"
#include "daemon/app/Node.h"
#include "daemon/config/Config.h"

int main(int argc, char** argv) {
  CLI::App app{"segnoded: the DICOM node daemon (storage SCP, routing, segmentation workers, senders)", "segnoded"};
  segnode::cli::setUp(app, "Exit codes: 0 ok, 64 usage, 74 I/O (port, disk), 78 bad configuration.\n"
                           "Signals: SIGTERM/SIGINT stop (in-flight C-STOREs and the running job finish), SIGHUP reloads\n"
                           "peers, routes, destinations, retry and logging.level.");
  app.set_version_flag("--version", std::string("segnoded ") + segnode::version());
  std::string configFile;
  bool checkOnly = false;
  app.add_option("--config", configFile, "node configuration (see etc/segnode.yaml)")->required();
  app.add_flag("--check-config", checkOnly, "validate the configuration, print every problem with its key and fix, and exit");
  try {
    app.parse(argc, argv);
    auto cfg = segnode::config::loadConfig(configFile);
    if (checkOnly) {
      segnode::app::Node::checkCertificates(cfg);
      std::printf("%s: ok (AE %s, port %u, %zu peers, %zu SOP classes, spool %s, database %s)\n", configFile.c_str(),
                  cfg.aeTitle.c_str(), unsigned(cfg.port), cfg.peers.size(), cfg.sopClasses.size(),
                  cfg.spoolDir.c_str(), cfg.database.c_str());
      return 0;
    }
    segnode::log::Level level;
    if (segnode::log::parseLevel(cfg.logLevel, level)) segnode::log::setLevel(level);
    segnode::app::Node node(std::move(cfg));
    return node.run();
  } catch (const CLI::ParseError& e) {
    return segnode::cli::usage(app, e);
  } catch (const segnode::Error& e) {
    std::fprintf(stderr, "segnoded: %s:\n%s\n", segnode::toString(e.code()), e.what());
    return segnode::exitCodeFor(e.code());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "segnoded: internal error: %s\n", e.what());
    return 70;
  }
}
