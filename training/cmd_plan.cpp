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

// CT from label maps only: the foreground of synthesised images (one per map and training phase,
// fixed seeds, in HU) stands in for the images' foreground, from which nnU-Net's CTNormalization
// takes its statistics.
std::vector<float> synthesisedForeground(const DataOptions& data, const engine::BundleSpec& spec) {
  auto synth = makeSynthesizer(data, spec, torch::kCPU, /*validation=*/true);
  const auto& table = synth->table();
  if (table.phases.empty()) return {};
  std::vector<int> phases;
  for (const auto& p : data.phases) phases.push_back(table.phaseIndex(p));
  if (phases.empty())
    for (size_t p = 0; p < table.phases.size(); ++p) phases.push_back(int(p));
  std::vector<float> foreground;
  for (size_t i = 0; i < synth->subjects().size(); ++i)
    for (int p : phases) {
      auto b = synth->whole(int(i), training::Contrast::Prior, synth->subjects()[i].geometry.spacing,
                            training::Synthesizer::wholeSeed(3000 + uint64_t(p), i), 8, p, /*raw=*/true);
      auto fg = b.image[0][0].masked_select(b.target[0] > 0).contiguous();
      foreground.insert(foreground.end(), fg.data_ptr<float>(), fg.data_ptr<float>() + fg.numel());
    }
  std::fprintf(stderr, "CT statistics from %zu synthesised foreground voxels (%zu maps x %zu phases)\n",
               foreground.size(), synth->subjects().size(), phases.size());
  return foreground;
}

training::Fingerprint fingerprint(const std::vector<std::string>& labels, const std::vector<std::string>& images,
                                  const engine::BundleSpec& spec, const DataOptions& synthesis) {
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
  if (images.empty() && !synthesis.table.empty() && spec.preprocessing.normalization == engine::Normalization::CT)
    foreground = synthesisedForeground(synthesis, spec);
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

struct PlanArgs {
  std::string templateFile, out;
  std::vector<std::string> labels, images;
  DataOptions synthesis;  // CT label maps without images: --table, --phases, --body-blobs
  std::vector<double> targetSpacing;
  training::PlanOptions plan;
};

void writePlan(const PlanArgs& a) {
  auto spec = engine::loadBundleTemplate(a.templateFile);
  training::PlanOptions options = a.plan;
  if (!a.targetSpacing.empty()) {
    for (double v : a.targetSpacing)
      if (!(v > 0.1 && v < 20)) throw Error(ErrorCode::InvalidArgument, "--target-spacing: each value in 0.1..20 mm");
    options.targetSpacing = training::Real3{a.targetSpacing[0], a.targetSpacing[1], a.targetSpacing[2]};
    spec.preprocessing.targetSpacing = *options.targetSpacing;  // CT statistics synthesised on that grid
  }
  DataOptions synthesis = a.synthesis;
  synthesis.labels = a.labels, synthesis.device = "cpu";
  auto fp = fingerprint(a.labels, a.images, spec, synthesis);
  auto plan = training::makePlan(fp, options);
  std::string text = training::planToYaml(plan, fp);
  if (!a.out.empty()) {
    std::ofstream f(a.out);
    if (!(f << text)) throw Error(ErrorCode::Io, a.out + ": cannot write the plan");
    std::fprintf(stderr, "plan written to %s\n", a.out.c_str());
  }
  std::fputs(text.c_str(), stdout);
}

// Recipes: contrast (+ CT phase) + acquisition (mm; 0: the map's spacing). Default: what
// validation uses. The CT recipes are written in HU; the arterial phase and 6 mm slices are
// outside what CT training draws (training/eval/abdomen-ct-cases.yaml).
struct Recipe { std::string name; training::Contrast contrast; engine::Vec3 acq; std::string phase; };
const std::vector<Recipe> kRecipes{{"t1-1mm", training::Contrast::Prior, {1, 1, 1}, ""},
                                   {"t2like-1mm", training::Contrast::Inverted, {1, 1, 1}, ""},
                                   {"t1-3mm-axial", training::Contrast::Prior, {1, 1, 3}, ""},
                                   {"random-1x1x4mm", training::Contrast::Random, {1, 4, 1}, ""},
                                   {"real", training::Contrast::Real, {0, 0, 0}, ""},
                                   {"ct-noncontrast", training::Contrast::Prior, {0, 0, 0}, "noncontrast"},
                                   {"ct-portal-venous", training::Contrast::Prior, {0, 0, 0}, "portal_venous"},
                                   {"ct-arterial", training::Contrast::Prior, {0, 0, 0}, "arterial"},
                                   {"ct-portal-venous-6mm", training::Contrast::Prior, {0, 0, 6}, "portal_venous"}};

const int64_t kMargin = 8;  // voxels around the foreground box that a written pair keeps

struct SynthArgs {
  DataOptions data;
  std::string templateFile, out;
  int seed = 1000;
  std::vector<std::string> recipes{"t1-1mm", "t2like-1mm", "t1-3mm-axial"};
};

// Writes <out>/<name>_<recipe>_image.nii.gz and _labels.nii.gz (label values of the bundle).
void writeSynthPairs(const SynthArgs& a) {
  auto spec = engine::loadBundleTemplate(a.templateFile);
  auto device = deviceFrom(a.data);
  auto synth = makeSynthesizer(a.data, spec, device, /*validation=*/true);
  fs::path out = a.out;
  fs::create_directories(out);
  const uint64_t seed = uint64_t(a.seed);
  const std::set<std::string> wanted(a.recipes.begin(), a.recipes.end());
  std::vector<int64_t> valueOf;
  for (auto& l : spec.labels) valueOf.push_back(l.value);
  auto values = torch::tensor(valueOf);
  for (size_t i = 0; i < synth->subjects().size(); ++i) {
    const auto& s = synth->subjects()[i];
    for (const auto& r : kRecipes) {
      if (!wanted.count(r.name)) continue;
      engine::Vec3 acq = r.acq;
      for (int a = 0; a < 3; ++a) acq[size_t(a)] = std::max(acq[size_t(a)], s.geometry.spacing[size_t(a)]);
      const bool ct = !r.phase.empty();
      if (ct != !synth->table().phases.empty())
        throw Error(ErrorCode::InvalidArgument, "recipe " + r.name + (ct ? " needs a CT table (--table training/ct/...)"
                                                                          : " is not for a CT table"));
      auto b = synth->whole(int(i), r.contrast, acq, training::Synthesizer::wholeSeed(seed, i), kMargin,
                            ct ? synth->table().phaseIndex(r.phase) : -1, /*raw=*/ct);
      // Geometry of the cropped box: same axes, origin moved to the box corner.
      const auto& fb = s.foregroundBox;
      const int64_t m = kMargin;
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
}

}  // namespace

void addDataOptions(CLI::App& sub, DataOptions& o) {
  auto* g = sub.add_option_group("Data");
  g->add_option("--labels", o.labels, "label maps A,B,... (NIfTI)")->delimiter(',');
  g->add_option("--images", o.images, "their images, one per label map")->delimiter(',');
  g->add_option("--table", o.table, "generation classes and priors (TSV); else from --images");
  g->add_option("--prior-probability", o.priorProbability, "share of batches with prior contrasts")->check(CLI::Range(0.0, 1.0));
  g->add_option("--real-probability", o.realProbability, "(default: 0.5 with --images, else 0)")->check(CLI::Range(0.0, 1.0));
  g->add_option("--device", o.device, "training device (default: cuda when available)")->check(CLI::IsMember({"cpu", "cuda"}));
  g->add_option("--val-labels", o.valLabels, "held-out label maps for validation curves")->delimiter(',');
  g->add_option("--phases", o.phases, "CT: contrast phases to draw (default: all in the table)")->delimiter(',');
  g->add_option("--body-blobs", o.bodyBlobs, "CT: most tissue blobs in the unlabelled body (0: one Gaussian)")
      ->check(CLI::Range(0, 64));
  g->add_option("--context-maps", o.contextMaps, "CT: fully labelled maps whose body context fills the hull "
                                                 "(training/ct/totalseg-context.py)")->delimiter(',');
  g->add_option("--synth-threads", o.synthThreads, "train, distill: threads that synthesise a batch's samples at once, each on its "
                                                   "own CUDA stream (the batches are the same for any number)")
      ->check(CLI::Range(1, 64));
}

void addPlan(CLI::App& app) {
  auto p = std::make_shared<PlanArgs>();
  auto* plan = app.add_subcommand("plan", "dataset fingerprint -> plan YAML (nnU-Net v2 rules)");
  plan->add_option("--template", p->templateFile, "bundle template T.yaml")->required();
  plan->add_option("--labels", p->labels, "label maps A,B,...")->required()->delimiter(',');
  plan->add_option("--images", p->images, "their images A,B,...")->delimiter(',');
  plan->add_option("--table", p->synthesis.table, "CT label maps without images: the CT generation table whose "
                                                  "synthesised foreground gives the CT statistics");
  plan->add_option("--phases", p->synthesis.phases, "CT: the training phases of the statistics (default: all)")->delimiter(',');
  plan->add_option("--target-spacing", p->targetSpacing, "X,Y,Z mm instead of the data's (nnU-Net's overwrite_target_spacing)")
      ->delimiter(',')
      ->expected(3);
  plan->add_option("--gpu-memory-gb", p->plan.gpuMemoryTargetGb, "GPU memory to plan for")->check(CLI::Range(0.5, 1024.0));
  plan->add_option("--out", p->out, "also write the plan here");
  plan->callback([p] { writePlan(*p); });

  auto s = std::make_shared<SynthArgs>();
  auto* synth = app.add_subcommand("synth", "write synthetic image/label NIfTI pairs from label maps (whole foreground, fixed seed)");
  synth->add_option("--template", s->templateFile, "bundle template T.yaml")->required();
  synth->add_option("--out", s->out, "output folder")->required();
  synth->add_option("--seed", s->seed, "seed of the first subject")->check(CLI::Range(0, 1 << 30));
  std::vector<std::string> names;
  for (const auto& r : kRecipes) names.push_back(r.name);
  synth->add_option("--recipes", s->recipes, "contrast + acquisition")->delimiter(',')->check(CLI::IsMember(names));
  addDataOptions(*synth, s->data);
  synth->get_option("--labels")->required();
  synth->callback([s] { writeSynthPairs(*s); });
}

}  // namespace segnode::distill
