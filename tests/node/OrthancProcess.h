#pragma once
// A real PACS for the end-to-end tests: Debian's Orthanc on loopback ports, started and stopped
// by the test (as the orthanc user), queried through its REST API with curl.
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "TestSupport.h"

namespace segnode::test {

class OrthancProcess {
 public:
  // `nodePort`: where the segnode peer listens (registered as modality "segnode").
  // `extraJson`: more top-level members of Orthanc's configuration, starting with a comma.
  explicit OrthancProcess(int nodePort, const std::string& extraJson = "");
  ~OrthancProcess();
  static bool available();  // /usr/sbin/Orthanc installed
  void start();             // bounded wait until its REST API answers
  void stop();
  int dicomPort() const { return dicomPort_; }
  std::string get(const std::string& uri) const;                           // REST GET body
  std::string post(const std::string& uri, const std::string& body) const;  // REST POST body
  std::vector<std::string> instancesOfModality(const std::string& modality) const;  // Orthanc instance ids
  void download(const std::string& instanceId, const std::filesystem::path& to) const;

 private:
  TempDir dir_;
  int dicomPort_, httpPort_, nodePort_;
  pid_t pid_ = -1;
};

}  // namespace segnode::test
