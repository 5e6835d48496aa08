#include "NodeHarness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <dcmtk/dcmdata/dctk.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <thread>

namespace segnode::test {

std::filesystem::path segnodedPath() { return SEGNODED_PATH; }

std::filesystem::path dicomData(const std::string& relative) { return sharedData("dicom/" + relative); }

pid_t spawnCommand(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    setenv("TCP_NODELAY", "1", 1);  // DCMTK peers without Nagle (DESIGN §7)
    execvp(args[0], args.data());
    _exit(127);
  }
  return pid;
}

bool waitFor(const std::function<bool()>& condition, double seconds) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(int(seconds * 1000));
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return condition();
}

CommandResult runCommand(const std::vector<std::string>& argv) {
  TempDir tmp;
  auto out = tmp / "out";
  pid_t pid = spawnCommand(argv, out);
  int status = 0;
  waitpid(pid, &status, 0);
  CommandResult r;
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream f(out);
  r.output.assign(std::istreambuf_iterator<char>(f), {});
  return r;
}

int freePort() {
  static std::mt19937 rng(std::random_device{}());
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 20000 + int(rng() % 20000);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    if (ok) return port;
  }
  throw std::runtime_error("no free port found");
}

NodeProcess::NodeProcess(const std::string& peersYaml, const std::string& extraYaml) : port_(freePort()), httpPort_(freePort()) {
  while (httpPort_ == port_) httpPort_ = freePort();
  std::ofstream f(configFile());
  f << "dicom:\n  ae_title: SEGNODE\n  port: " << port_ << "\n  max_associations: 16\n"
    << (peersYaml.empty() ? "  peers:\n    - {ae_title: STORESCU, host: 127.0.0.1}\n    - {ae_title: ECHOSCU, host: 127.0.0.1}\n"
                          : peersYaml)
    << "storage:\n  spool_dir: " << spool().string() << "\n  database: " << database().string()
    << "\n  min_free_mb: 10\nhttp:\n  port: " << httpPort_ << "\n" << extraYaml;
}

NodeProcess::~NodeProcess() {
  if (const auto report = exitReport(); !report.empty()) std::fprintf(stderr, "%s\n", report.c_str());
  if (pid_ > 0) kill9();
}

namespace {
std::string lastLines(const std::string& text, int n) {
  size_t cut = text.size();
  while (n-- >= 0 && cut != std::string::npos && cut > 0) cut = text.rfind('\n', cut - 1);
  return cut == std::string::npos || cut == 0 ? text : text.substr(cut + 1);
}
}  // namespace

std::string NodeProcess::exitReport() {
  int status = 0;
  if (pid_ <= 0 || waitpid(pid_, &status, WNOHANG) != pid_) return exitReport_;
  pid_ = -1;
  const std::string how = WIFSIGNALED(status) ? "was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                                                    strsignal(WTERMSIG(status)) + ")"
                                              : "exited with code " + std::to_string(WEXITSTATUS(status));
  exitReport_ = "segnoded " + how + " while the test still used it; the end of its log:\n" + lastLines(log(), 40);
  return exitReport_;
}

std::string NodeProcess::log() const {
  std::ifstream f(dir() / "segnoded.log");
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void NodeProcess::editConfig(const std::string& from, const std::string& to) {
  std::ifstream in(configFile());
  std::string cfg(std::istreambuf_iterator<char>(in), {});
  auto pos = cfg.find(from);
  if (pos == std::string::npos) throw std::runtime_error("editConfig: '" + from + "' not in the config");
  cfg.replace(pos, from.size(), to);
  std::ofstream(configFile()) << cfg;
}

void NodeProcess::appendConfig(const std::string& yaml) { std::ofstream(configFile(), std::ios::app) << yaml; }

void NodeProcess::start(double listenSeconds) {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open((dir() / "segnoded.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(segnodedPath().c_str(), "segnoded", "--config", configFile().c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < int(listenSeconds * 10); ++i) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("segnoded exited at start:\n" + log());
    }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(port_));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    bool up = connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(s);
    if (up) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("segnoded did not listen within " + std::to_string(int(listenSeconds)) + " s:\n" + log());
}

long NodeProcess::peakRssKb() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (pid_ > 0 && std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

long NodeProcess::memoryMaps() const {
  std::ifstream maps("/proc/" + std::to_string(pid_) + "/maps");
  long n = 0;
  for (std::string line; pid_ > 0 && std::getline(maps, line);) ++n;
  return n;
}

void NodeProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void NodeProcess::signal(int sig) const {
  if (pid_ > 0) ::kill(pid_, sig);
}

CommandResult NodeProcess::http(const std::string& target, const std::string& method) const {
  auto r = runCommand({"curl", "-s", "-m", "10", "-X", method, "-w", "\n%{http_code}",
                       "http://127.0.0.1:" + std::to_string(httpPort_) + target});
  auto cut = r.output.rfind('\n');
  CommandResult out;
  out.exitCode = cut == std::string::npos ? 0 : std::atoi(r.output.c_str() + cut + 1);
  out.output = cut == std::string::npos ? r.output : r.output.substr(0, cut);
  return out;
}

int NodeProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {  // up to 10 s
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill9();
  throw std::runtime_error("segnoded did not stop on SIGTERM within 10 s");
}

CommandResult NodeProcess::storescu(const std::vector<std::string>& options, const std::vector<std::string>& files,
                                    const std::string& callingAe) const {
  std::vector<std::string> argv{"storescu", "-aet", callingAe, "-aec", "SEGNODE"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back("127.0.0.1");
  argv.push_back(std::to_string(port_));
  argv.insert(argv.end(), files.begin(), files.end());
  return runCommand(argv);
}

CommandResult NodeProcess::storeAsIs(const std::vector<std::filesystem::path>& files) const {
  static const std::map<std::string, std::string> option = {
      {"1.2.840.10008.1.2", "-xi"},        {"1.2.840.10008.1.2.1", "-xe"},      {"1.2.840.10008.1.2.2", "-xb"},
      {"1.2.840.10008.1.2.5", "-xr"},      {"1.2.840.10008.1.2.4.70", "-xs"},   {"1.2.840.10008.1.2.4.80", "-xt"},
      {"1.2.840.10008.1.2.4.81", "-xu"},   {"1.2.840.10008.1.2.4.90", "-xv"},   {"1.2.840.10008.1.2.4.91", "-xw"},
      {"1.2.840.10008.1.2.4.50", "-xy"}};
  std::map<std::string, std::vector<std::string>> groups;
  for (const auto& f : files) groups[transferSyntaxOf(f)].push_back(f.string());
  CommandResult all{0, ""};
  for (const auto& [ts, group] : groups) {
    auto it = option.find(ts);
    CommandResult r = storescu({it == option.end() ? "-xe" : it->second}, group);
    all.output += r.output;
    if (all.exitCode == 0) all.exitCode = r.exitCode;
  }
  return all;
}

CommandResult NodeProcess::echoscu(const std::string& callingAe, const std::string& calledAe) const {
  return runCommand({"echoscu", "-aet", callingAe, "-aec", calledAe, "127.0.0.1", std::to_string(port_)});
}

long long NodeProcess::queryInt(const std::string& sql) const {
  SQLite::Database db(database().string(), SQLite::OPEN_READONLY);
  return db.execAndGet(sql).getInt64();
}

std::vector<std::string> NodeProcess::queryStrings(const std::string& sql) const {
  SQLite::Database db(database().string(), SQLite::OPEN_READONLY);
  SQLite::Statement q(db, sql);
  std::vector<std::string> out;
  while (q.executeStep()) out.push_back(q.getColumn(0).getString());
  return out;
}

std::string sopInstanceUidOf(const std::filesystem::path& file) {
  DcmFileFormat ff;
  if (ff.loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData).bad())
    return {};
  OFString uid;
  ff.getDataset()->findAndGetOFString(DCM_SOPInstanceUID, uid);
  return uid.c_str();
}

std::string transferSyntaxOf(const std::filesystem::path& file) {
  DcmFileFormat ff;
  if (ff.loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect, DCM_PixelData).bad())
    return {};
  OFString ts;
  ff.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, ts);
  return ts.c_str();
}

int dciodvfyErrors(const std::filesystem::path& file, std::string& report) {
  report = runCommand({"dciodvfy", file.string()}).output;
  int errors = 0;
  for (size_t p = report.find("Error"); p != std::string::npos; p = report.find("Error", p + 1)) ++errors;
  return errors;
}

// Part 10 files: "DICM" after the 128-byte preamble.
static bool isPart10(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  char buf[132] = {};
  return f.read(buf, 132) && std::string(buf + 128, 4) == "DICM";
}

std::vector<std::filesystem::path> dicomFilesIn(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().parent_path().filename() != ".tmp" && isPart10(e.path())) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string pixelBytesOf(const std::filesystem::path& file) {
  DcmFileFormat ff;
  if (ff.loadFile(file.c_str()).bad()) throw std::runtime_error(file.string() + ": not readable");
  DcmElement* e = nullptr;
  if (ff.getDataset()->findAndGetElement(DCM_PixelData, e).bad()) throw std::runtime_error(file.string() + ": no Pixel Data");
  Uint8* data = nullptr;
  e->getUint8Array(data);
  return std::string(reinterpret_cast<const char*>(data), e->getLength());
}

std::vector<std::string> acknowledgedFiles(const std::filesystem::path& storescuLog) {
  std::ifstream log(storescuLog);
  std::string line, current;
  std::vector<std::string> out;
  while (std::getline(log, line)) {
    if (auto p = line.find("Sending file: "); p != std::string::npos) current = line.substr(p + 14);
    if (line.find("Received Store Response (Success)") != std::string::npos && !current.empty()) out.push_back(current);
  }
  return out;
}

namespace {
void mustRun(const std::vector<std::string>& argv) {
  auto r = runCommand(argv);
  if (r.exitCode != 0) throw std::runtime_error(argv[0] + " failed: " + r.output);
}
}  // namespace

TestPki::TestPki() {
  ::chmod(dir_.path().c_str(), 0755);
  makeCa("ca");
  makeCa("rogue-ca");
  for (const char* name : {"node", "client", "orthanc"}) sign(name, "ca");
  sign("rogue-client", "rogue-ca");
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) ::chmod(e.path().c_str(), 0644);
}

void TestPki::makeCa(const std::string& name) {
  mustRun({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key(name), "-out", crt(name), "-days", "2",
           "-subj", "/CN=segnode test " + name});
}

void TestPki::sign(const std::string& name, const std::string& ca) {
  const std::string csr = (dir_ / (name + ".csr")).string();
  mustRun({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key(name), "-out", csr, "-subj", "/CN=127.0.0.1"});
  mustRun({"openssl", "x509", "-req", "-in", csr, "-CA", crt(ca), "-CAkey", key(ca), "-CAcreateserial", "-out", crt(name),
           "-days", "2"});
}

}  // namespace segnode::test
