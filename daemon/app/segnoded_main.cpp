// segnoded: the DICOM node daemon. Wiring only: config -> storage -> recovery -> series assembler
// + retention (Asio thread) -> DICOM listener (main thread) until SIGTERM/SIGINT.
#include <boost/asio.hpp>

#include <cstdio>
#include <thread>

#include "common/Cli.h"
#include "common/Error.h"
#include "common/Log.h"
#include "daemon/config/Config.h"
#include "daemon/dicom/InstanceReader.h"
#include "daemon/dicom/StoreScp.h"
#include "daemon/dicom/Toolkit.h"
#include "daemon/ingest/IngestService.h"
#include "daemon/ingest/Recovery.h"
#include "daemon/ingest/Retention.h"
#include "daemon/routing/SeriesAssembler.h"
#include "daemon/jobs/JobRunner.h"
#include "daemon/routing/Router.h"
#include "daemon/send/Sender.h"
#include "storage/Jobs.h"
#include "storage/Db.h"
#include "storage/Index.h"
#include "storage/Spool.h"

namespace {

segnode::dicom::ScpOptions scpOptions(const segnode::config::NodeConfig& c) {
  return {c.aeTitle, c.port, c.maxAssociations, c.maxPdu, c.acseTimeoutSeconds, c.dimseTimeoutSeconds, c.sopClasses, c.tls};
}

int run(const segnode::config::NodeConfig& cfg) {
  using namespace segnode;
  dicom::configureToolkit(log::enabled(log::Level::Debug));
  auto db = storage::openDatabase(cfg.database);
  storage::Spool spool(cfg.spoolDir);
  storage::Index index(*db);
  // Jobs and the outbox get their own connection: their transactions must not interleave with
  // the index's on one connection.
  auto jobsDb = storage::openDatabase(cfg.database);
  storage::Jobs jobs(*jobsDb);
  auto rep = ingest::recover(spool, index, dicom::readInstanceHeader);
  auto requeued = jobs.requeueRunning(cfg.maxJobAttempts);
  SEGNODE_LOG(Info, App, "recovery: " << rep.tempFilesRemoved << " temp files removed, " << rep.rowsWithoutFile
                                      << " rows without file dropped, " << rep.filesReindexed << " files re-indexed, "
                                      << rep.filesSuperseded << " superseded copies removed, " << rep.filesUnreadable << " quarantined, " << requeued.requeued << " jobs re-queued, "
                                      << requeued.givenUp << " failed after " << cfg.maxJobAttempts << " attempts");

  int legacy = jobs.fillLegacyDestinations([&](const std::string& route) -> std::optional<std::vector<std::string>> {
    for (const auto& r : cfg.routes)
      if (r.name == route) return r.destinations;
    return std::nullopt;
  });
  if (legacy) SEGNODE_LOG(Info, App, legacy << " jobs from before destinations were stored: filled from their routes");

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  send::Sender sender({cfg.aeTitle, cfg.dimseTimeoutSeconds, cfg.retry, cfg.destinations}, jobs);
  jobs::JobRunner runner({cfg.modelsDir, cfg.outputDir, config::workerCount(cfg), config::threadsPerWorker(cfg), cfg.uidRoot}, index,
                         jobs, [&] { sender.wake(); });
  routing::Router router({cfg.routes, cfg.maxVoxels, cfg.uidRoot}, index, jobs, [&] { runner.wake(); });
  routing::SeriesAssembler assembler(io, index, cfg.quietPeriodSeconds,
                                [&](const storage::SeriesInfo& s) { router.onSeriesReady(s.uid, s.generation); });
  ingest::Retention retention(io, index, jobs, spool, cfg.retentionHours);
  ingest::IngestService service(cfg, spool, index, assembler);
  dicom::StoreScp scp(scpOptions(cfg), service);

  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    SEGNODE_LOG(Info, App, "signal " << sig << ": finishing running associations, then stopping");
    scp.stop();
  });
  assembler.resumeReceiving();
  // Series that became ready before a crash but got no job yet are routed now.
  boost::asio::post(io, [&] {
    std::vector<storage::SeriesInfo> ready;
    std::string error;
    if (!storage::recordWithRetry([&] { ready = index.seriesInState(storage::SeriesState::Ready); }, error))
      SEGNODE_LOG(Error, Route, "series ready before the restart could not be listed: " << error);
    for (const auto& s : ready) router.onSeriesReady(s.uid, s.generation);
  });
  retention.start();
  sender.start();
  runner.start();
  std::thread ioThread([&] { io.run(); });
  SEGNODE_LOG(Info, App, "segnoded " << cfg.aeTitle << " listening on port " << cfg.port << ", spool "
                                     << cfg.spoolDir.string() << ", database " << cfg.database.string());
  int rc = 0;
  try {
    scp.run();
  } catch (const Error& e) {
    SEGNODE_LOG(Error, App, e.what());
    rc = exitCodeFor(e.code());
  }
  work.reset();
  io.stop();
  ioThread.join();
  runner.stop();
  sender.stop();
  SEGNODE_LOG(Info, App, "stopped");
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"segnoded: the DICOM node daemon (storage SCP, routing, segmentation workers, senders)", "segnoded"};
  segnode::cli::setUp(app, "Exit codes: 0 ok, 64 usage, 74 I/O (port, disk), 78 bad configuration.");
  std::string configFile;
  bool checkOnly = false;
  app.add_option("--config", configFile, "node configuration (see etc/segnode.yaml)")->required();
  app.add_flag("--check-config", checkOnly, "validate the configuration, print every problem with its key and fix, and exit");
  try {
    app.parse(argc, argv);
    auto cfg = segnode::config::loadConfig(configFile);
    if (checkOnly) {
      std::printf("%s: ok (AE %s, port %u, %zu peers, %zu SOP classes, spool %s, database %s)\n", configFile.c_str(),
                  cfg.aeTitle.c_str(), unsigned(cfg.port), cfg.peers.size(), cfg.sopClasses.size(),
                  cfg.spoolDir.c_str(), cfg.database.c_str());
      return 0;
    }
    segnode::log::Level level;
    if (segnode::log::parseLevel(cfg.logLevel, level)) segnode::log::setLevel(level);
    return run(cfg);
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
