#include "daemon/app/Node.h"

#include <algorithm>

#include "common/Error.h"
#include "common/Log.h"
#include "common/Metrics.h"
#include "common/Version.h"
#include "daemon/app/IoLoop.h"
#include "daemon/app/Systemd.h"
#include "daemon/dicom/InstanceReader.h"
#include "daemon/dicom/Tls.h"
#include "daemon/dicom/Toolkit.h"
#include "daemon/ingest/Recovery.h"

namespace segnode::app {
namespace {

dicom::ScpOptions scpOptions(const config::NodeConfig& c) {
  return {c.aeTitle, c.port, c.maxAssociations, c.maxPdu, c.acseTimeoutSeconds, c.dimseTimeoutSeconds, c.sopClasses, c.tls};
}

// Worker heartbeats older than this make /readyz fail (and, under systemd, withhold the watchdog
// ping at the unit's WatchdogSec instead).
constexpr auto kStaleWithoutWatchdog = std::chrono::minutes(5);

std::string joined(const std::vector<std::string>& items, const char* separator) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : separator) + i;
  return out;
}

}  // namespace

Node::Node(config::NodeConfig config)
    : cfg_(std::move(config)),
      db_(storage::openDatabase(cfg_.database)),
      // Jobs and the outbox get their own connection: their transactions must not interleave with
      // the index's on one connection.
      jobsDb_(storage::openDatabase(cfg_.database)),
      spool_(cfg_.spoolDir),
      index_(*db_),
      jobs_(*jobsDb_),
      work_(boost::asio::make_work_guard(io_)),
      ioBeat_(heartbeats_.add("io loop")),
      sender_({cfg_.aeTitle, cfg_.dimseTimeoutSeconds, cfg_.retry, cfg_.destinations}, jobs_),
      runner_({cfg_.modelsDir, cfg_.outputDir, config::workerCount(cfg_), config::threadsPerWorker(cfg_), cfg_.uidRoot, &heartbeats_,
               config::precisionCacheFile(cfg_), cfg_.precision, cfg_.tileStep, cfg_.siteModelsDir},
              index_, jobs_, [this] { sender_.wake(); }),
      router_({cfg_.routes, cfg_.maxVoxels, cfg_.uidRoot}, index_, jobs_, [this] { runner_.wake(); }),
      assembler_(io_, index_, cfg_.quietPeriodSeconds,
                 [this](const storage::SeriesInfo& s) { router_.onSeriesReady(s.uid, s.generation); }),
      retention_(io_, index_, jobs_, spool_, cfg_.retentionHours),
      service_(cfg_, spool_, index_, assembler_),
      scp_(scpOptions(cfg_), service_),
      stopSignals_(io_, SIGINT, SIGTERM),
      reloadSignal_(io_, SIGHUP),
      timer_(io_) {}

Node::~Node() {
  if (senderRestart_.joinable()) senderRestart_.join();
}

void Node::recover() {
  auto rep = ingest::recover(spool_, index_, dicom::readInstanceHeader);
  auto requeued = jobs_.requeueRunning(cfg_.maxJobAttempts);
  SEGNODE_LOG(Info, App, "recovery: " << rep.tempFilesRemoved << " temp files removed, " << rep.rowsWithoutFile
                                      << " rows without file dropped, " << rep.filesReindexed << " files re-indexed, "
                                      << rep.filesSuperseded << " superseded copies removed, " << rep.filesUnreadable
                                      << " quarantined, " << requeued.requeued << " jobs re-queued, " << requeued.givenUp
                                      << " failed after " << cfg_.maxJobAttempts << " attempts");
  int legacy = jobs_.fillLegacyDestinations([&](const std::string& route) -> std::optional<std::vector<std::string>> {
    for (const auto& r : cfg_.routes)
      if (r.name == route) return r.destinations;
    return std::nullopt;
  });
  if (legacy) SEGNODE_LOG(Info, App, legacy << " jobs from before destinations were stored: filled from their routes");
}

std::vector<std::string> Node::routeModels() const {
  std::vector<std::string> models;
  for (const auto& r : cfg_.routes)
    if (std::find(models.begin(), models.end(), r.model) == models.end()) models.push_back(r.model);
  return models;
}

void Node::start() {
  metrics::set(metrics::Family::ConfigLoaded, {}, 1);
  if (cfg_.httpPort) {
    http::NodeView view{cfg_.database, cfg_.spoolDir, cfg_.minFreeBytes, config::workerCount(cfg_),
                        config::threadsPerWorker(cfg_), [this] { return checks(); }};
    http_ = std::make_unique<http::HttpServer>(io_, cfg_.httpAddress, cfg_.httpPort, http::nodeEndpoints(std::move(view)));
    SEGNODE_LOG(Info, App, "HTTP on " << cfg_.httpAddress << ":" << http_->port() << " (/healthz /readyz /metrics /api/status /api/jobs)");
  }
  watchStop();
  watchReload();
  assembler_.resumeReceiving();
  // Series that became ready before a crash but got no job yet are routed now.
  boost::asio::post(io_, [this] {
    std::vector<storage::SeriesInfo> ready;
    std::string error;
    if (!storage::recordWithRetry([&] { ready = index_.seriesInState(storage::SeriesState::Ready); }, error))
      SEGNODE_LOG(Error, Route, "series ready before the restart could not be listed: " << error);
    for (const auto& s : ready) router_.onSeriesReady(s.uid, s.generation);
  });
  retention_.start();
  sender_.start();
  runner_.start();
  boost::asio::post(io_, [this] { tick(); });
}

void Node::watchStop() {
  stopSignals_.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (!ec) stop(sig);
  });
}

void Node::watchReload() {
  reloadSignal_.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;
    reload();
    if (!stopping_) watchReload();
  });
}

int Node::run() {
  dicom::configureToolkit(log::enabled(log::Level::Debug));
  recover();
  modelProblems_ = runner_.preload(routeModels());
  for (const auto& p : modelProblems_) SEGNODE_LOG(Error, Infer, "model of a route does not load: " << p);
  start();
  std::thread ioThread([this] {
    runIoLoop(io_, [](const char* what) {
      SEGNODE_LOG(Error, App, "a handler of the io thread failed: " << what << "; the io thread goes on");
      metrics::add(metrics::Family::IoHandlerFailures);
    });
  });
  SEGNODE_LOG(Info, App, "segnoded " << version() << " " << cfg_.aeTitle << " on port " << cfg_.port << ", spool "
                                     << cfg_.spoolDir.string() << ", database " << cfg_.database.string());
  int rc = 0;
  try {
    scp_.run();
  } catch (const Error& e) {
    SEGNODE_LOG(Error, App, e.what());
    rc = exitCodeFor(e.code());
  }
  // The listener has returned (every association ended). The running jobs finish, or past
  // processing.stop_timeout_s go back to the queue; queued work stays queued.
  const auto deadline = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(cfg_.stopTimeoutSeconds));
  runner_.stop(deadline);
  work_.reset();
  io_.stop();  // timers (retention, quiet periods, the tick) would keep it running
  ioThread.join();
  if (senderRestart_.joinable()) senderRestart_.join();
  sender_.stop();
  SEGNODE_LOG(Info, App, "stopped");
  return rc;
}

void Node::stop(int sig) {
  stopping_ = true;
  notifyStopping();
  SEGNODE_LOG(Info, App, "signal " << sig << ": no new associations; finishing the running ones and the running job"
                                   << " (at most " << cfg_.stopTimeoutSeconds << " s, then it is re-queued)");
  scp_.stop();
}

void Node::checkCertificates(const config::NodeConfig& config) {
  if (config.tls) dicom::makeTlsLayer(*config.tls, /*accepting=*/true);
  send::Sender::remotesFor(config.destinations);
}

void Node::reload() {
  if (stopping_) return;
  notifyReloading();
  config::NodeConfig next;
  try {
    next = config::loadConfig(cfg_.file);
    checkCertificates(next);
  } catch (const std::exception& e) {
    configProblem_ = std::string("SIGHUP: the new configuration is refused, the running one is kept: ") + e.what();
    SEGNODE_LOG(Error, App, configProblem_);
    metrics::add(metrics::Family::ConfigReloads, {"rejected"});
    metrics::set(metrics::Family::ConfigLoaded, {}, 0);
    notifyReady("running; the last reload was refused (see the log or /readyz)");
    return;
  }
  const auto pending = config::keysNeedingRestart(cfg_, next);
  service_.setPeers(next.peers, next.acceptUnknownPeers);
  router_.setRoutes(next.routes);
  if (senderRestart_.joinable()) senderRestart_.join();
  senderRestart_ = std::thread([this, d = next.destinations, r = next.retry] {
    try {
      sender_.restart(d, r);
    } catch (const std::exception& e) {
      SEGNODE_LOG(Error, Send, "SIGHUP: the senders kept their running destinations (a TLS file changed since the reload was checked): " << e.what());
    }
  });
  if (log::Level level; log::parseLevel(next.logLevel, level)) log::setLevel(level);
  cfg_.peers = next.peers, cfg_.acceptUnknownPeers = next.acceptUnknownPeers, cfg_.routes = next.routes;
  cfg_.destinations = next.destinations, cfg_.retry = next.retry, cfg_.logLevel = next.logLevel;
  runner_.forgetModels();
  modelProblems_ = runner_.preload(routeModels());
  for (const auto& p : modelProblems_) SEGNODE_LOG(Error, Infer, "model of a route does not load: " << p);
  configProblem_ = pending.empty() ? "" : "changed in the file, applied at the next restart: " + joined(pending, ", ");
  metrics::add(metrics::Family::ConfigReloads, {"applied"});
  metrics::set(metrics::Family::ConfigLoaded, {}, pending.empty() ? 1 : 0);
  SEGNODE_LOG(Info, App, "SIGHUP: configuration reloaded (" << cfg_.routes.size() << " routes, " << cfg_.destinations.size()
                                                            << " destinations, " << cfg_.peers.size() << " peers)"
                                                            << (pending.empty() ? "" : "; " + configProblem_));
  notifyReady("running; configuration reloaded");
}

void Node::tick() {
  heartbeats_.beat(ioBeat_);
  if (!ready_ && !stopping_ && listeningOn(cfg_.port)) {
    ready_ = true;
    notifyReady("listening on port " + std::to_string(cfg_.port));
    SEGNODE_LOG(Info, App, "ready: listening on port " << cfg_.port);
  }
  if (auto interval = watchdogInterval()) {
    auto stale = heartbeats_.staleSince(*interval);
    if (stale.empty()) notifyWatchdog();
    else SEGNODE_LOG(Error, App, "no progress within WatchdogSec: " << joined(stale, ", ") << "; systemd will restart the node");
  }
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

std::vector<http::Check> Node::checks() {
  std::vector<http::Check> out;
  const bool listening = listeningOn(cfg_.port);
  out.push_back({"dicom", listening, std::string(listening ? "" : "not ") + "listening on port " + std::to_string(cfg_.port)});
  const auto models = routeModels();
  const size_t loaded = models.size() - modelProblems_.size();
  out.push_back({"models", models.empty() || loaded > 0,  // no route: nothing to load, images are still taken
                 std::to_string(loaded) + " of " + std::to_string(models.size()) + " route models load" +
                     (modelProblems_.empty() ? "" : "; " + joined(modelProblems_, "; "))});
  const auto stale = heartbeats_.staleSince(watchdogInterval().value_or(kStaleWithoutWatchdog));
  out.push_back({"workers", stale.empty(), stale.empty() ? "every worker and the io loop make progress" : "stuck: " + joined(stale, ", ")});
  out.push_back({"config", configProblem_.empty(), configProblem_.empty() ? "the file's, as loaded" : configProblem_, false});
  return out;
}

}  // namespace segnode::app
