// Precision chosen by measurement (issue 14): what a bundle allows, the measured choice and its
// cache per CPU and bundle, a pin; and the Dice guard that decides what a bundle allows.
// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <fstream>
#include <nlohmann/json.hpp>

#include "TestSupport.h"
#include "engine/Model.h"
#include "engine/PrecisionChoice.h"
#include "engine/TinyBundle.h"
#include "training/PrecisionGuard.h"

using namespace segnode;
using segnode::test::TempDir;

namespace {

engine::BundleSpec installedTiny(const TempDir& dir, bool bf16Guard) {
  auto spec = test::tinySpec();
  if (bf16Guard) spec.metrics["precision_guard"]["bf16"] = {{"passed", true}};
  return engine::writeRandomBundle(spec, dir / "tiny", 7);
}

nlohmann::ordered_json metrics(const std::string& precision, double group, double structure) {
  return {{"precision", precision},
          {"mean_dice", {{"synth-t1", group}, {"real", 0.8}}},
          {"dice", {{"synth-t1", {{"hippocampus", structure}, {"cortex", 0.9}}}, {"real", {{"cortex", 0.8}}}}}};
}

}  // namespace

TEST_CASE("a bundle allows bf16 only with a passed Dice guard - fp32 always", "[engine][precision]") {
  TempDir dir;
  auto names = [](const std::vector<engine::Precision>& ps) {
    std::string s;
    for (auto p : ps) s += std::string(s.empty() ? "" : ",") + engine::toString(p);
    return s;
  };
  CHECK(names(engine::allowedPrecisions(installedTiny(dir, false))) == "fp32");
  TempDir other;
  CHECK(names(engine::allowedPrecisions(installedTiny(other, true))) == "fp32,bf16");
  auto failed = test::tinySpec();
  failed.metrics["precision_guard"]["bf16"] = {{"passed", false}};
  CHECK(engine::allowedPrecisions(failed).size() == 1);
  // int8 needs both its passed guard and the calibration it was guarded with.
  auto int8 = test::tinySpec();
  int8.metrics["precision_guard"]["int8"] = {{"passed", true}};
  CHECK(names(engine::allowedPrecisions(int8)) == "fp32");
  int8.inference.int8.activationAbsmax = {{1.0, 2.0}};
  CHECK(names(engine::allowedPrecisions(int8)) == "fp32,int8");
}

TEST_CASE("the precision is measured once per CPU and bundle, cached, and a pin wins", "[engine][precision]") {
  TempDir dir;
  const auto spec = installedTiny(dir, true);
  const auto cache = dir / "state" / "precision-cache.json";
  auto first = engine::choosePrecision(spec, cache);
  CHECK(first.how == "measured");
  REQUIRE_FALSE(first.secondsPerTile.empty());  // fp32 at least; bf16 too where the CPU computes it natively
  CHECK(first.secondsPerTile.size() == (engine::cpuHasNativeBf16() ? 2u : 1u));
  double fastest = first.secondsPerTile[0].second;
  for (const auto& [p, s] : first.secondsPerTile) fastest = std::min(fastest, s);
  for (const auto& [p, s] : first.secondsPerTile)
    if (p == first.chosen) CHECK(s == fastest);
  INFO(first.summary());

  auto again = engine::choosePrecision(spec, cache);
  CHECK(again.how == "cached");
  CHECK(again.chosen == first.chosen);
  auto json = nlohmann::json::parse(std::ifstream(cache));
  REQUIRE(json["entries"].size() == 1);
  CHECK(json["entries"][0]["cpu"] == engine::cpuKey());
  CHECK(json["entries"][0]["weights_sha256"] == spec.weightsSha256);
#ifdef SEGNODE_WITH_ONEDNN
  // The same model name on another instruction set (a VM moved to a host without AMX) measures again.
  CHECK(engine::cpuKey() != engine::cpuModelName());
  json["entries"][0]["cpu"] = engine::cpuModelName() + " (oneDNN some_other_isa)";
  std::ofstream(cache) << json.dump();
  CHECK(engine::choosePrecision(spec, cache).how == "measured");
#endif

  auto pinned = engine::choosePrecision(spec, cache, engine::Precision::Float32);
  CHECK(pinned.chosen == engine::Precision::Float32);
  CHECK(pinned.how == "pinned in the config");
  TempDir plain;
  CHECK(engine::choosePrecision(installedTiny(plain, false), cache).how.rfind("only fp32 allowed", 0) == 0);
}

TEST_CASE("the precision guard passes drops within 0.005 per group and 0.02 per structure - not beyond", "[training][precision]") {
  auto reference = metrics("fp32", 0.7000, 0.6000);
  auto ok = training::precisionGuard(reference, metrics("bf16", 0.6960, 0.5810));
  CHECK(ok.passed);
  CHECK(ok.worstGroupDrop == Approx(0.004));
  CHECK(ok.worstStructureDrop == Approx(0.019));
  CHECK(ok.worstStructure == "synth-t1: hippocampus");

  auto groupTooLow = training::precisionGuard(reference, metrics("bf16", 0.6940, 0.5990));
  CHECK_FALSE(groupTooLow.passed);
  CHECK(groupTooLow.worstGroup == "synth-t1");
  CHECK_FALSE(training::precisionGuard(reference, metrics("bf16", 0.7000, 0.5750)).passed);

  auto missingStructure = metrics("bf16", 0.7, 0.6);
  missingStructure["dice"]["real"].erase("cortex");
  CHECK_THROWS_WITH(training::precisionGuard(reference, missingStructure), Catch::Contains("dice.real.cortex"));
  CHECK_THROWS_WITH(training::precisionGuard(metrics("bf16", 0.7, 0.6), reference), Catch::Contains("not fp32"));
}
