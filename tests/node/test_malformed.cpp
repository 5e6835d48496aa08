// The malformed-input corpus (issue 12): data sets that are broken in the ways real senders and
// attackers break them, each taken through what the node does with a received file (admission,
// then loading as a series: tests/fuzz/IngestTarget.h). Each must be refused with the reason, in
// bounded memory; none may crash. The same function replays the fuzzer's regression files.
#include <sys/resource.h>

#include <catch2/catch.hpp>

#include <dcmtk/dcmdata/dctk.h>

#include <fstream>
#include <iterator>

#include "NodeHarness.h"
#include "fuzz/IngestTarget.h"

using namespace segnode::test;
namespace fs = std::filesystem;

namespace {

std::string bytesOf(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string outcome(const std::string& bytes, const TempDir& tmp) {
  return segnode::fuzz::ingestBytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), tmp / "scratch.dcm");
}

// The file after `edit` on its data set, saved in its own transfer syntax.
std::string edited(const fs::path& file, const std::function<void(DcmDataset&)>& edit, const TempDir& tmp) {
  DcmFileFormat ff;
  REQUIRE(ff.loadFile(file.c_str()).good());
  edit(*ff.getDataset());
  auto out = tmp / "edited.dcm";
  REQUIRE(ff.saveFile(out.c_str(), ff.getDataset()->getOriginalXfer()).good());
  return bytesOf(out);
}

// Offset of the value length of the last element `tag` (group, element) in an explicit VR little
// endian data set: 4 bytes after the tag for 2-byte lengths (US), 8 for OB/OW's 4-byte lengths.
size_t lengthOffset(const std::string& bytes, uint16_t group, uint16_t element, bool longLength) {
  const char tag[4] = {char(group & 0xff), char(group >> 8), char(element & 0xff), char(element >> 8)};
  size_t at = bytes.rfind(std::string(tag, 4));
  REQUIRE(at != std::string::npos);
  return at + (longLength ? 8 : 6);
}

long peakRssMb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024;
}

}  // namespace

TEST_CASE("malformed data sets are refused with the reason, in bounded memory - never a crash", "[node][malformed][data]") {
  const fs::path source = dicomData("siemens_prisma_gre_fieldmap_sag") / "dicom" / "1.dcm";
  if (segnode::test::missing(fs::exists(source), "../shared/data/dicom/siemens_prisma_gre_fieldmap_sag")) return;
  TempDir tmp;
  const std::string good = bytesOf(source);
  auto set = [&](const DcmTagKey& key, const char* value) {
    return edited(source, [&](DcmDataset& ds) { REQUIRE(ds.putAndInsertString(key, value).good()); }, tmp);
  };

  std::string wrongVrLength = good;  // Rows (US, 2 bytes) claims 6: every later element is misread
  wrongVrLength[lengthOffset(good, 0x0028, 0x0010, false)] = 6;
  std::string claims4Gb = good;  // Pixel Data claims 4 GB in a 100 kB file
  const size_t at = lengthOffset(good, 0x7fe0, 0x0010, true);
  for (int b = 0; b < 4; ++b) claims4Gb[at + size_t(b)] = char(0xff - (b == 0 ? 0x0f : 0));

  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"truncated in the pixel data", good.substr(0, good.size() - 2000), "not readable as DICOM"},
      {"truncated in the header", good.substr(0, 3000), "not readable"},
      {"a wrong VR length", wrongVrLength, ""},
      {"no Pixel Data", edited(source, [](DcmDataset& ds) { delete ds.remove(DCM_PixelData); }, tmp), "no Pixel Data"},
      {"BitsAllocated 0", set(DCM_BitsAllocated, "0"), "BitsAllocated 0"},
      {"BitsAllocated 24", set(DCM_BitsAllocated, "24"), "BitsAllocated 24"},
      {"a 60000 x 60000 header on a 64 x 84 image", edited(source, [](DcmDataset& ds) {
         REQUIRE(ds.putAndInsertUint16(DCM_Rows, 60000).good());
         REQUIRE(ds.putAndInsertUint16(DCM_Columns, 60000).good());
       }, tmp), "Pixel Data is shorter than the image"},
      {"1000 frames claimed by a single-frame image", set(DCM_NumberOfFrames, "1000"), "Pixel Data is shorter than the image"},
      {"a Pixel Data length of 4 GB", claims4Gb, "not readable as DICOM"},
      {"a 1-slice series", good, "a single image"},
  };
  for (const auto& [name, bytes, reason] : cases) {
    INFO(name);
    const std::string why = outcome(bytes, tmp);
    CHECK_FALSE(why.empty());  // refused, never loaded as a volume
    CHECK_THAT(why, Catch::Contains(reason));
  }
  // The fuzzer's crashes, kept as regression files (tests/fuzz/fuzz.sh): each must now be refused
  // or loaded; a crash or a foreign exception fails here.
  for (const auto& e : fs::directory_iterator(fs::path(SEGNODE_SOURCE_DIR) / "tests/fuzz/regressions")) {
    if (e.path().extension() == ".md") continue;
    INFO("regression file " << e.path().filename().string());
    outcome(bytesOf(e.path()), tmp);
  }
  // Nothing above allocated what a header claimed (7.2 GB for 60000 x 60000, 4 GB of pixels).
  CHECK(peakRssMb() < 1024);
}
