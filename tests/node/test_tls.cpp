// DICOM TLS on the listener (issue 12), with certificates from a throwaway CA made by the test
// (TestPki); storescu is the client. The sender's TLS is tested against Orthanc in test_pipeline.
#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>

#include "NodeHarness.h"

using namespace segnode::test;
namespace fs = std::filesystem;

namespace {

bool haveTools() {
  return !segnode::test::missing(runCommand({"openssl", "version"}).exitCode == 0, "openssl(1)") &&
         !segnode::test::missing(!dicomData("siemens_prisma_gre_fieldmap_sag").empty(), "../shared/data/dicom");
}

std::vector<std::string> tlsClient(const TestPki& pki, const std::string& who) {
  return {"+tls", pki.key(who), pki.crt(who), "+cf", pki.crt("ca")};
}

// The node's port speaks TLS with the node's certificate, trusting the test CA; `more` adds keys.
void listenWithTls(NodeProcess& node, const TestPki& pki, const std::string& certificate, const std::string& key,
                   const std::string& more = "") {
  node.editConfig("  max_associations: 16\n", "  max_associations: 16\n  tls:\n    certificate: " + certificate +
                                                  "\n    private_key: " + key + "\n    trusted_certificates: [" +
                                                  pki.crt("ca") + "]\n" + more);
}

}  // namespace

TEST_CASE("DICOM TLS: a client with a trusted certificate is served - an untrusted one and plain TCP are refused",
          "[node][tls][data]") {
  if (!haveTools()) return;
  TestPki pki;
  NodeProcess node;
  listenWithTls(node, pki, pki.crt("node"), pki.key("node"));
  node.start();
  auto files = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag"));
  auto trusted = node.storescu(tlsClient(pki, "client"), {files[0].string()});
  INFO(trusted.output);
  CHECK(trusted.exitCode == 0);
  auto only12 = tlsClient(pki, "client");
  only12.push_back("+pz");  // TLS 1.2 only: served here, refused where min_version is 1.3 (below)
  CHECK(node.storescu(only12, {files[4].string()}).exitCode == 0);
  CHECK(node.storescu(tlsClient(pki, "rogue-client"), {files[1].string()}).exitCode != 0);
  CHECK(node.storescu({}, {files[2].string()}).exitCode != 0);  // plain TCP on the TLS port
  // Without a certificate of its own the client is refused too (require_client_certificate).
  CHECK(node.storescu({"+tla", "+cf", pki.crt("ca")}, {files[3].string()}).exitCode != 0);
  node.stop();
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances") == 2);
  CHECK(node.queryInt("SELECT COUNT(*) FROM instances WHERE sop_instance_uid IN ('" + sopInstanceUidOf(files[0]) + "', '" +
                      sopInstanceUidOf(files[4]) + "')") == 2);
}

TEST_CASE("segnoded and --check-config refuse a TLS key that does not match its certificate - exit 78 naming the files",
          "[node][tls][config]") {
  if (segnode::test::missing(runCommand({"openssl", "version"}).exitCode == 0, "openssl(1)")) return;
  TestPki pki;
  NodeProcess node;
  listenWithTls(node, pki, pki.crt("node"), pki.key("client"));
  auto r = runCommand({segnodedPath().string(), "--config", node.configFile().string()});
  CHECK(r.exitCode == 78);
  CHECK_THAT(r.output, Catch::Contains("does not match certificate") && Catch::Contains(pki.key("client")));
  auto check = runCommand({segnodedPath().string(), "--config", node.configFile().string(), "--check-config"});
  CHECK(check.exitCode == 78);  // the checker loads the files as the node will, not only sees them
  CHECK_THAT(check.output, Catch::Contains("does not match certificate"));
}

TEST_CASE("DICOM TLS min_version 1.3: a client limited to TLS 1.2 is refused, a 1.3 one served", "[node][tls][data]") {
  if (!haveTools()) return;
  TestPki pki;
  NodeProcess node;
  listenWithTls(node, pki, pki.crt("node"), pki.key("node"), "    min_version: \"1.3\"\n");
  node.start();
  auto files = dicomFilesIn(dicomData("siemens_prisma_gre_fieldmap_sag"));
  auto only12 = tlsClient(pki, "client");
  only12.push_back("+pz");  // DCMTK's extended BCP 195 profile negotiates TLS 1.2 and nothing else
  CHECK(node.storescu(only12, {files[0].string()}).exitCode != 0);
  CHECK(node.storescu(tlsClient(pki, "client"), {files[1].string()}).exitCode == 0);
  node.stop();
  CHECK(node.queryStrings("SELECT sop_instance_uid FROM instances") == std::vector<std::string>{sopInstanceUidOf(files[1])});
}

TEST_CASE("SIGHUP with a destination whose TLS certificates cannot be used: the reload is refused, the node keeps running",
          "[node][tls][reload]") {
  NodeProcess node;
  node.start();
  // The checker sees a file that exists; only loading it into a TLS layer shows it holds no certificate.
  const fs::path notPem = node.dir() / "not-a-certificate.pem";
  std::ofstream(notPem) << "this is not a PEM certificate\n";
  node.appendConfig("destinations:\n  - {name: pacs, ae_title: PACS, host: 127.0.0.1, port: " + std::to_string(freePort()) +
                    ", tls: {trusted_certificates: [" + notPem.string() + "]}}\n");
  node.signal(SIGHUP);
  REQUIRE(waitFor([&] { return node.http("/readyz").output.find("the new configuration is refused") != std::string::npos; }, 10));
  CHECK_THAT(node.http("/readyz").output, Catch::Contains(notPem.string()));
  CHECK(node.echoscu("STORESCU").exitCode == 0);  // still serving, with the old configuration
  CHECK(node.stop() == 0);
}
