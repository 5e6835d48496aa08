#pragma once
// Runs the real segnoded as a child process on a loopback port with a scratch config, and the
// real DCMTK tools against it. Every wait is bounded.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "TestSupport.h"

namespace segnode::test {

struct CommandResult {
  int exitCode = -1;
  std::string output;  // stdout + stderr
};

// Runs argv (no shell) and captures its output.
CommandResult runCommand(const std::vector<std::string>& argv);
// Starts argv (no shell) with stdout+stderr to `log`; returns its pid (the caller waits).
pid_t spawnCommand(const std::vector<std::string>& argv, const std::filesystem::path& log);
// Polls `condition` every 100 ms for at most `seconds`; returns its last value.
bool waitFor(const std::function<bool()>& condition, double seconds);

// A port that nothing listens on now, away from common ones.
int freePort();

class NodeProcess {
 public:
  // extraYaml is appended under the top level, overriding defaults (e.g. "series:\n  quiet_period_s: 1\n").
  explicit NodeProcess(const std::string& dicomPeersYaml = "", const std::string& extraYaml = "");
  ~NodeProcess();

  // Edits the scratch config before start(): replaces the first `from` with `to`.
  void editConfig(const std::string& from, const std::string& to);
  void appendConfig(const std::string& yaml);
  // Spawns and waits (bounded) until it listens. segnoded loads every route's model before it
  // listens, and times each precision on a fresh state directory: a real teacher needs longer.
  void start(double listenSeconds = 60);  // a bound, not a wait: a busy CI machine times a model slowly
  void kill9();  // crash it
  int stop();    // SIGTERM and wait (bounded); returns the exit code (-1: killed by a signal)
  void signal(int sig) const;  // e.g. SIGHUP
  bool running() const { return pid_ > 0; }
  // How segnoded ended when nobody stopped it ("" while it runs): its exit code or signal and the
  // last lines of its log. A test waiting on a node that went away fails at once with this, and
  // the destructor prints it: CI keeps no scratch directory to read the log from afterwards.
  std::string exitReport();
  long peakRssKb() const;  // VmHWM of the running segnoded (0 when not running)
  long memoryMaps() const;  // lines of /proc/PID/maps of the running segnoded (0 when not running)

  int port() const { return port_; }
  int httpPort() const { return httpPort_; }
  // GET (or `method`) http://127.0.0.1:<http port><target> with curl: exitCode is the HTTP status
  // (0 when no answer), output the body.
  CommandResult http(const std::string& target, const std::string& method = "GET") const;
  std::filesystem::path dir() const { return dir_.path(); }
  std::filesystem::path spool() const { return dir_.path() / "spool"; }
  std::filesystem::path database() const { return dir_.path() / "segnode.db"; }
  std::filesystem::path configFile() const { return dir_.path() / "segnode.yaml"; }
  std::string log() const;

  // storescu/echoscu with this node as the peer.
  CommandResult storescu(const std::vector<std::string>& options, const std::vector<std::string>& files,
                         const std::string& callingAe = "STORESCU") const;
  // Sends files grouped by transfer syntax, each group proposing its own syntax (as a PACS
  // does), so nothing is transcoded on the way. Exit code: the first non-zero one.
  CommandResult storeAsIs(const std::vector<std::filesystem::path>& files) const;
  CommandResult echoscu(const std::string& callingAe = "STORESCU", const std::string& calledAe = "SEGNODE") const;

  // SELECT helpers on the node's database (read-only connection).
  long long queryInt(const std::string& sql) const;
  std::vector<std::string> queryStrings(const std::string& sql) const;

 private:
  TempDir dir_;
  int port_, httpPort_;
  pid_t pid_ = -1;
  std::string exitReport_;
};

// A throwaway CA made with openssl(1), and certificates it signs (CN 127.0.0.1) for "node",
// "client" and "orthanc"; plus "rogue-ca", which nobody trusts, and its "rogue-client". The files
// are readable by Orthanc's user. Throws when openssl fails.
class TestPki {
 public:
  TestPki();
  std::string crt(const std::string& name) const { return (dir_ / (name + ".crt")).string(); }
  std::string key(const std::string& name) const { return (dir_ / (name + ".key")).string(); }

 private:
  void makeCa(const std::string& name);
  void sign(const std::string& name, const std::string& ca);
  TempDir dir_;
};

std::filesystem::path segnodedPath();
std::filesystem::path dicomData(const std::string& relative);  // ../shared/data/dicom/<relative>
// Every DICOM file below dir (by reading the header), sorted.
std::vector<std::filesystem::path> dicomFilesIn(const std::filesystem::path& dir);
std::string sopInstanceUidOf(const std::filesystem::path& file);
std::string transferSyntaxOf(const std::filesystem::path& file);
// Raw bytes of Pixel Data after decompression by DCMTK's codecs (not JPEG 2000): what must
// survive storing, whatever the meta header the receiver writes.
std::string pixelBytesOf(const std::filesystem::path& file);
// The files a `storescu -v` run (its log) got a Success response for, in order.
std::vector<std::string> acknowledgedFiles(const std::filesystem::path& storescuLog);
// Runs dciodvfy (dicom3tools) on a file: the number of "Error" lines; `report` gets its output.
int dciodvfyErrors(const std::filesystem::path& file, std::string& report);

}  // namespace segnode::test
