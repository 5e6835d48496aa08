// segnode-distill plan (fingerprint -> plan YAML) and synth (image/label pairs to look at).
#include <torch/torch.h>

#include <cstdio>
#include <fstream>

#include "common/Error.h"
#include "engine/Nifti.h"
#include "engine/Preprocess.h"
#include "training/Commands.h"
#include "training/Data.h"
#include "training/Plan.h"

namespace segnode::distill {
namespace fs = std::filesystem;

namespace {

training::Fingerprint fingerprint(const std::vector<std::string>& labels, const std::vector<std::string>& images,
                                  const engine::BundleSpec& spec) {
  training::Fingerprint fp;
  fp.numLabels = int(spec.labels.size());
  fp.inputChannels = spec.architecture.inChannels;
  auto lut = training::targetLookup(spec.labels);
  std::vector<float> foreground;
  for (size_t i = 0; i < labels.size(); ++i) {
    engine::Volume v = engine::readNifti(labels[i]);
    auto ro = engine::canonicalReorientation(v.geometry);
    auto g = ro.apply(v.geometry);
    auto lab = engine::reorient(v.data.to(torch::kFloat), ro).round().to(torch::kLong);
    auto box = engine::nonzeroBox(lab);
    fp.spacings.push_back(g.spacing);
    auto sz = box.size();
    fp.shapesAfterCrop.push_back({sz[0], sz[1], sz[2]});
    if (!images.empty() && spec.preprocessing.normalization == engine::Normalization::CT) {
      auto img = engine::reorient(engine::readNifti(images[i]).data.to(torch::kFloat), ro);
      auto t = torch::tensor(std::vector<int64_t>(lut.begin(), lut.end())).index({lab.clamp(0, int64_t(lut.size()) - 1)});
      auto fg = img.masked_select(t > 0).contiguous();
      foreground.insert(foreground.end(), fg.data_ptr<float>(), fg.data_ptr<float>() + fg.numel());
    }
  }
  if (!foreground.empty()) {
    auto t = torch::from_blob(foreground.data(), {int64_t(foreground.size())}, torch::kFloat).to(torch::kDouble);
    auto sorted = std::get<0>(t.sort());
    auto at = [&](double p) { return sorted[int64_t(p * double(sorted.numel() - 1))].item<double>(); };
    fp.ctPercentile005 = at(0.005);
    fp.ctPercentile995 = at(0.995);
    fp.ctMean = t.mean().item<double>();
    fp.ctStd = t.std().item<double>();
  }
  return fp;
}

}  // namespace

int runPlan(const ArgList& argv) {
  cli::Args args(argv, {}, {"--template", "--labels", "--images", "--gpu-memory-gb", "--out"});
  auto spec = engine::loadBundleTemplate(args.required("--template"));
  std::vector<std::string> images;
  if (auto v = args.value("--images")) images = cli::splitList(*v);
  auto fp = fingerprint(cli::splitList(args.required("--labels")), images, spec);
  training::PlanOptions o;
  o.gpuMemoryTargetGb = args.doubleValue("--gpu-memory-gb", 8, 0.5, 1024);
  auto plan = training::makePlan(fp, o);
  std::string text = training::planToYaml(plan, fp);
  if (auto out = args.value("--out")) {
    std::ofstream f(*out);
    if (!(f << text)) throw Error(ErrorCode::Io, *out + ": cannot write the plan");
    std::fprintf(stderr, "plan written to %s\n", out->c_str());
  }
  std::fputs(text.c_str(), stdout);
  return 0;
}

// Writes <out>/<name>_<recipe>_image.nii.gz and _labels.nii.gz (label values of the bundle).
int runSynth(const ArgList& argv) {
  auto valued = kDataOptions;
  valued.insert({"--template", "--out", "--seed", "--recipes"});
  cli::Args args(argv, {}, valued);
  auto spec = engine::loadBundleTemplate(args.required("--template"));
  auto device = deviceFrom(args);
  auto synth = makeSynthesizer(args, spec, device, /*validation=*/true);
  fs::path out = args.required("--out");
  fs::create_directories(out);
  uint64_t seed = uint64_t(args.intValue("--seed", 1000, 0, 1 << 30));
  // Recipes: contrast + acquisition (mm). Default: what validation uses.
  struct Recipe { std::string name; training::Contrast contrast; engine::Vec3 acq; };
  std::vector<Recipe> all{{"t1-1mm", training::Contrast::Prior, {1, 1, 1}},
                          {"t2like-1mm", training::Contrast::Inverted, {1, 1, 1}},
                          {"t1-3mm-axial", training::Contrast::Prior, {1, 1, 3}},
                          {"random-1x1x4mm", training::Contrast::Random, {1, 4, 1}},
                          {"real", training::Contrast::Real, {0, 0, 0}}};
  std::set<std::string> wanted;
  for (auto& r : cli::splitList(args.value("--recipes").value_or("t1-1mm,t2like-1mm,t1-3mm-axial"))) wanted.insert(r);
  std::vector<int64_t> valueOf;
  for (auto& l : spec.labels) valueOf.push_back(l.value);
  auto values = torch::tensor(valueOf);
  for (size_t i = 0; i < synth->subjects().size(); ++i) {
    const auto& s = synth->subjects()[i];
    for (const auto& r : all) {
      if (!wanted.count(r.name)) continue;
      engine::Vec3 acq = r.acq;
      for (int a = 0; a < 3; ++a) acq[size_t(a)] = std::max(acq[size_t(a)], s.geometry.spacing[size_t(a)]);
      auto b = synth->whole(int(i), r.contrast, acq, training::Synthesizer::wholeSeed(seed, i));
      // Geometry of the cropped box: same axes, origin moved to the box corner.
      const auto& fb = s.foregroundBox;
      const int64_t m = 8;
      engine::Vec3 corner{double(std::max<int64_t>(0, fb[4] - m)), double(std::max<int64_t>(0, fb[2] - m)),
                          double(std::max<int64_t>(0, fb[0] - m))};
      engine::Geometry g = s.geometry;
      g.origin = s.geometry.indexToWorld(corner);
      auto img = b.image[0][0].to(torch::kCPU).contiguous();
      g.size = {img.size(2), img.size(1), img.size(0)};
      std::string stem = fs::path(s.name).stem().stem().string() + "_" + r.name;
      engine::writeNifti(out / (stem + "_image.nii.gz"), {img, g});
      auto lab = values.index({b.target[0].to(torch::kCPU)}).to(torch::kShort).contiguous();
      engine::writeNifti(out / (stem + "_labels.nii.gz"), {lab, g});
      std::printf("%s\n", (out / (stem + "_image.nii.gz")).c_str());
    }
  }
  return 0;
}

}  // namespace segnode::distill
