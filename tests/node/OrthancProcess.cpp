#include "OrthancProcess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "NodeHarness.h"
#include <nlohmann/json.hpp>

namespace segnode::test {

bool OrthancProcess::available() { return std::filesystem::exists("/usr/sbin/Orthanc"); }

OrthancProcess::OrthancProcess(int nodePort, const std::string& extraJson) : dicomPort_(freePort()), httpPort_(freePort()), nodePort_(nodePort) {
  std::filesystem::create_directories(dir_ / "db");
  std::ofstream(dir_ / "orthanc.json")
      << "{\"Name\": \"segnode-test\", \"StorageDirectory\": \"" << (dir_ / "db").string() << "\", \"IndexDirectory\": \""
      << (dir_ / "db").string() << "\", \"DicomAet\": \"ORTHANC\", \"DicomPort\": " << dicomPort_
      << ", \"HttpPort\": " << httpPort_
      << ", \"RemoteAccessAllowed\": false, \"AuthenticationEnabled\": false, \"DicomCheckCalledAet\": false,"
         " \"Plugins\": [], \"DicomModalities\": {\"segnode\": [\"SEGNODE\", \"127.0.0.1\", "
      << nodePort_ << "]}" << extraJson << "}\n";
  runCommand({"chown", "-R", "orthanc:orthanc", dir_.path().string()});
}

OrthancProcess::~OrthancProcess() { stop(); }

void OrthancProcess::start() {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = ::open((dir_ / "orthanc.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    setenv("TCP_NODELAY", "1", 1);
    execl("/usr/bin/setpriv", "setpriv", "--reuid=orthanc", "--regid=orthanc", "--init-groups", "/usr/sbin/Orthanc",
          (dir_ / "orthanc.json").c_str(), nullptr);
    _exit(127);
  }
  for (int i = 0; i < 200; ++i) {  // up to 20 s
    if (!get("/system").empty()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  throw std::runtime_error("Orthanc did not answer within 20 s");
}

void OrthancProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100 && waitpid(pid_, nullptr, WNOHANG) != pid_; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, WNOHANG);
  pid_ = -1;
}

std::string OrthancProcess::get(const std::string& uri) const {
  auto r = runCommand({"curl", "-sf", "http://127.0.0.1:" + std::to_string(httpPort_) + uri});
  return r.exitCode == 0 ? r.output : "";
}

std::string OrthancProcess::post(const std::string& uri, const std::string& body) const {
  auto r = runCommand({"curl", "-sf", "-X", "POST", "--data-binary", body, "http://127.0.0.1:" + std::to_string(httpPort_) + uri});
  return r.exitCode == 0 ? r.output : "";
}

std::vector<std::string> OrthancProcess::instancesOfModality(const std::string& modality) const {
  std::string body = post("/tools/find", "{\"Level\": \"Instance\", \"Query\": {\"Modality\": \"" + modality + "\"}}");
  std::vector<std::string> out;
  if (body.empty()) return out;
  // Orthanc answers with ids, or with whole resources ("ID" inside) depending on its version.
  for (const auto& e : nlohmann::json::parse(body))
    out.push_back(e.is_string() ? e.get<std::string>() : e.at("ID").get<std::string>());
  return out;
}

void OrthancProcess::download(const std::string& id, const std::filesystem::path& to) const {
  runCommand({"curl", "-sf", "-o", to.string(), "http://127.0.0.1:" + std::to_string(httpPort_) + "/instances/" + id + "/file"});
}

}  // namespace segnode::test
