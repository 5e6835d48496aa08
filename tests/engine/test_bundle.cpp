// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <fstream>


#include "TestSupport.h"
#include "engine/TinyBundle.h"
#include "common/Error.h"
#include "common/Sha256.h"
#include "engine/Model.h"
#include "engine/ModelStore.h"
#include "engine/Nifti.h"
#include "engine/Safetensors.h"

using namespace segnode::engine;
using segnode::test::TempDir;

namespace {

// Expects loading `dir` (spec + weights) to fail with an error that names `file` and says `what`.
void expectRefused(const std::filesystem::path& dir, const std::string& file, const std::string& what) {
  try {
    BundleSpec spec = loadBundleSpec(dir);
    SegmentationModel::load(spec);
    FAIL("bundle was accepted");
  } catch (const segnode::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    CHECK(e.code() == segnode::ErrorCode::BadBundle);
    CHECK(msg.find(file) != std::string::npos);
    CHECK(msg.find(what) != std::string::npos);
  }
}

std::string readText(const std::filesystem::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void writeText(const std::filesystem::path& p, const std::string& s) { std::ofstream(p) << s; }

}  // namespace

TEST_CASE("safetensors round trip, and the header is what Python expects", "[bundle]") {
  TempDir dir;
  TensorMap t{{"a.weight", torch::randn({2, 3, 4})}, {"b", torch::arange(5, torch::kFloat)}};
  writeSafetensors(dir / "w.safetensors", t, {{"format", "pt"}}, torch::kFloat);
  TensorMap r = readSafetensors(dir / "w.safetensors");
  REQUIRE(r.size() == 2);
  CHECK(torch::equal(r["a.weight"], t["a.weight"]));
  CHECK(torch::equal(r["b"], t["b"]));
  writeSafetensors(dir / "h.safetensors", t, {}, torch::kHalf);
  CHECK(readSafetensors(dir / "h.safetensors")["b"].scalar_type() == torch::kHalf);
  CHECK(torch::allclose(readSafetensors(dir / "h.safetensors")["a.weight"].to(torch::kFloat), t["a.weight"], 1e-3, 1e-3));
}

TEST_CASE("a bundle written is a bundle read, found by name or name@version", "[bundle]") {
  TempDir dir;
  BundleSpec spec = segnode::test::tinySpec();
  writeRandomBundle(spec, dir / "tiny" / "0.0.1", 1);
  spec.version = {0, 2, 0};
  writeRandomBundle(spec, dir / "tiny" / "0.2.0", 2);
  spec.version = {0, 10, 0};
  writeRandomBundle(spec, dir / "tiny" / "0.10.0", 3);
  ModelStore store(dir.path());
  CHECK(store.list().size() == 3);
  CHECK(store.resolve("tiny").version.toString() == "0.10.0");  // semantic, not lexical, order
  CHECK(store.resolve("tiny@0.2.0").version.toString() == "0.2.0");
  BundleSpec b = store.resolve("tiny@0.0.1");
  CHECK(b.labels.size() == 3);
  CHECK(b.labels[1].value == 10);
  CHECK((b.architecture.features == std::vector<int>{4, 8, 16}));
  CHECK(b.untrained());
  CHECK_FALSE(b.preprocessing.cropsForeground());
  auto model = SegmentationModel::load(b);
  CHECK(model->parameterCount() == b.architecture.parameterCount());
  CHECK_THROWS_WITH(store.resolve("nothere"), Catch::Contains("installed: tiny@0.0.1, tiny@0.2.0, tiny@0.10.0"));
  CHECK_THROWS_WITH(store.resolve("tiny@9.9.9"), Catch::Contains("not installed"));
  // A CT body crop survives the round trip.
  spec.preprocessing.cropForegroundAbove = -500;
  spec.preprocessing.cropForegroundMarginMm = 10;
  spec.version = {0, 3, 0};
  writeRandomBundle(spec, dir / "tiny" / "0.3.0", 4);
  BundleSpec ct = ModelStore(dir.path()).resolve("tiny@0.3.0");
  REQUIRE(ct.preprocessing.cropForegroundAbove.has_value());
  CHECK(*ct.preprocessing.cropForegroundAbove == -500);
  CHECK(ct.preprocessing.cropForegroundMarginMm == 10);
  CHECK(ct.preprocessing.cropForeground == 0);
}

TEST_CASE("corrupt, incomplete or mismatched bundles are refused with the file and the problem", "[bundle]") {
  TempDir dir;
  BundleSpec spec = segnode::test::tinySpec();
  auto fresh = [&](const std::string& name) {
    auto d = dir / name;
    writeRandomBundle(spec, d, 7);
    return d;
  };

  SECTION("a flipped byte in the weights") {
    auto d = fresh("flip");
    std::fstream f(d / "weights.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-10, std::ios::end);
    char c;
    f.read(&c, 1);
    c ^= 0x01;
    f.seekp(-10, std::ios::end);
    f.write(&c, 1);
    f.close();
    expectRefused(d, "weights.safetensors", "sha256");
  }
  SECTION("truncated weights with a matching checksum") {
    auto d = fresh("trunc");
    std::filesystem::resize_file(d / "weights.safetensors", std::filesystem::file_size(d / "weights.safetensors") - 64);
    BundleSpec s = loadBundleSpec(d);
    s.weightsSha256 = segnode::sha256File(d / "weights.safetensors");
    saveBundleSpec(s, d / "bundle.yaml");
    expectRefused(d, "weights.safetensors", "outside");
  }
  SECTION("missing weights file") {
    auto d = fresh("noweights");
    std::filesystem::remove(d / "weights.safetensors");
    expectRefused(d, "weights.safetensors", "missing");
  }
  SECTION("a missing key in bundle.yaml") {
    auto d = fresh("nokey");
    std::string y = readText(d / "bundle.yaml");
    auto pos = y.find("  target_spacing:");
    y.erase(pos, y.find('\n', pos) - pos + 1);
    writeText(d / "bundle.yaml", y);
    expectRefused(d, "bundle.yaml", "preprocessing.target_spacing': missing");
  }
  SECTION("a wrong value in bundle.yaml") {
    auto d = fresh("badval");
    std::string y = readText(d / "bundle.yaml");
    y.replace(y.find("normalization: zscore"), 21, "normalization: minmax");
    writeText(d / "bundle.yaml", y);
    expectRefused(d, "bundle.yaml", "must be 'zscore' (MR) or 'ct'");
  }
  SECTION("weights of another shape than the architecture") {
    auto d = fresh("shape");
    BundleSpec s = loadBundleSpec(d);
    s.architecture.features = {4, 8, 12};  // the file still holds 16 features in stage 2
    saveBundleSpec(s, d / "bundle.yaml");
    expectRefused(d, "weights.safetensors", "the architecture needs");
  }
  SECTION("a tensor the architecture does not have") {
    auto d = fresh("extra");
    TensorMap w = readSafetensors(d / "weights.safetensors");
    w["stray.weight"] = torch::zeros({2});
    writeSafetensors(d / "weights.safetensors", w, {}, torch::kFloat);
    BundleSpec s = loadBundleSpec(d);
    s.weightsSha256 = segnode::sha256File(d / "weights.safetensors");
    saveBundleSpec(s, d / "bundle.yaml");
    expectRefused(d, "weights.safetensors", "unexpected tensor 'stray.weight'");
  }
  SECTION("a foreground crop by two rules at once") {
    auto d = fresh("twocrops");
    BundleSpec s = loadBundleSpec(d);
    s.preprocessing.cropForeground = 0.1;
    s.preprocessing.cropForegroundAbove = -500;
    saveBundleSpec(s, d / "bundle.yaml");
    expectRefused(d, "bundle.yaml", "has both `fraction` and `above`");
  }
  SECTION("not YAML at all") {
    auto d = fresh("garbage");
    writeText(d / "bundle.yaml", "name: [unclosed\n");
    expectRefused(d, "bundle.yaml", "not valid YAML");
  }
}

TEST_CASE("a model store over two roots resolves the newest version across them - a tie goes to the first root",
          "[engine][bundle]") {
  segnode::test::TempDir dir;
  auto spec = segnode::test::tinySpec();
  spec.name = "tiny";
  for (auto [root, version] : {std::pair{"package", segnode::engine::SemVer{1, 0, 0}}, {"package", {1, 1, 0}},
                               {"site", {1, 2, 0}}, {"site", {1, 1, 0}}}) {
    spec.version = version;
    segnode::engine::writeRandomBundle(spec, dir / root / "tiny" / version.toString(), 1);
  }
  segnode::engine::ModelStore store({dir / "package", dir / "site", ""});
  CHECK(store.roots().size() == 2);
  CHECK(store.list().size() == 4);
  CHECK(store.resolve("tiny").version.toString() == "1.2.0");
  CHECK(store.resolve("tiny").directory.parent_path().parent_path() == dir / "site");
  CHECK(store.resolve("tiny@1.1.0").directory.parent_path().parent_path() == dir / "package");
  CHECK(store.resolve("tiny@1.0.0").version.toString() == "1.0.0");
  CHECK_THROWS_WITH(store.resolve("other"), Catch::Contains(" or "));
}

TEST_CASE("the FLARE22 template's label table is exactly the values of the FLARE22 maps, with SCT codes", "[bundle][data]") {
  const auto spec = loadBundleTemplate(std::filesystem::path(SEGNODE_SOURCE_DIR) / "etc/templates/abdomen-ct-flare13.yaml");
  REQUIRE(spec.labels.size() == 14);
  for (size_t i = 1; i < spec.labels.size(); ++i) {
    INFO(spec.labels[i].name);
    CHECK(spec.labels[i].value == int(i));
    CHECK(spec.labels[i].sourceValues == std::vector<int>{int(i)});
    CHECK(spec.labels[i].type.scheme == "SCT");
    CHECK_FALSE(spec.labels[i].type.value.empty());
  }
  CHECK(spec.labels[2].name == "right kidney");  // FLARE22's order: 2 right, 13 left kidney
  CHECK(spec.labels[2].typeModifier.value == "24028007");
  CHECK(spec.labels[13].name == "left kidney");
  CHECK(spec.labels[13].typeModifier.value == "7771000");
  const auto map = segnode::test::sharedData("abdomen_ct/flare22_label_maps/FLARE22_Tr_0001.nii.gz");
  if (segnode::test::missing(!map.empty(), "abdomen_ct/flare22_label_maps/FLARE22_Tr_0001.nii.gz")) return;
  torch::Tensor values = std::get<0>(at::_unique(readNifti(map).data.to(torch::kInt)));
  CHECK(values.numel() == 14);
  CHECK(values.max().item<int>() == 13);
}
