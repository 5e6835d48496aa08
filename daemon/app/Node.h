#pragma once
// segnoded's parts, wired: config -> storage -> recovery -> series assembler, router, retention
// and the HTTP endpoints (one Asio io thread) -> workers and senders (their own threads) -> the
// DICOM listener (main thread) until SIGTERM/SIGINT. Also what only the whole node can do: tell
// systemd it is ready and alive, reload on SIGHUP, stop within a bounded time.
#include <boost/asio.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/Liveness.h"
#include "daemon/config/Config.h"
#include "daemon/dicom/StoreScp.h"
#include "daemon/http/Endpoints.h"
#include "daemon/ingest/IngestService.h"
#include "daemon/ingest/Retention.h"
#include "daemon/jobs/JobRunner.h"
#include "daemon/routing/Router.h"
#include "daemon/routing/SeriesAssembler.h"
#include "daemon/send/Sender.h"
#include "storage/Db.h"
#include "storage/Index.h"
#include "storage/Jobs.h"
#include "storage/Spool.h"

namespace segnode::app {

class Node {
 public:
  explicit Node(config::NodeConfig config);
  ~Node();
  int run();  // returns the exit code
  // Loads the listener's and every destination's certificates as TLS will use them; throws
  // Error(BadConfig) naming the file. The config checker sees only that the files exist: a file
  // holding no certificate passes it. --check-config and SIGHUP (before it applies anything) run this.
  static void checkCertificates(const config::NodeConfig& config);

 private:
  void recover();
  void start();
  void watchStop();
  void watchReload();
  void reload();           // SIGHUP, on the io thread
  void stop(int signal);   // SIGTERM/SIGINT, on the io thread
  void tick();             // every second on the io thread: heartbeat, READY once listening, watchdog
  std::vector<http::Check> checks();
  std::vector<std::string> routeModels() const;

  config::NodeConfig cfg_;
  storage::Connection db_, jobsDb_;
  storage::Spool spool_;
  storage::Index index_;
  storage::Jobs jobs_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  Heartbeats heartbeats_;
  int ioBeat_;
  send::Sender sender_;
  jobs::JobRunner runner_;
  routing::Router router_;
  routing::SeriesAssembler assembler_;
  ingest::Retention retention_;
  ingest::IngestService service_;
  dicom::StoreScp scp_;
  std::unique_ptr<http::HttpServer> http_;
  boost::asio::signal_set stopSignals_, reloadSignal_;
  boost::asio::steady_timer timer_;
  std::thread senderRestart_;  // a reload restarts the senders here: a C-STORE in progress may take a while
  std::vector<std::string> modelProblems_;
  std::string configProblem_;  // the last reload's: refused, or keys that need a restart
  bool ready_ = false, stopping_ = false;
};

}  // namespace segnode::app
