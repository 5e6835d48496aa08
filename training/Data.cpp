#include "training/Data.h"

#include <ctime>

#include <torch/cuda.h>

#include "common/Error.h"

namespace segnode::distill {

torch::Device deviceFrom(const DataOptions& o) {
  std::string d = o.device.empty() ? (torch::cuda::is_available() ? "cuda" : "cpu") : o.device;
  if (d == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::InvalidArgument, "--device cuda: no CUDA device is available (use --device cpu)");
  return torch::Device(d == "cuda" ? torch::kCUDA : torch::kCPU);
}

std::string isoNow() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

std::unique_ptr<training::Synthesizer> makeSynthesizer(const DataOptions& o, const engine::BundleSpec& spec,
                                                       torch::Device device, bool validation) {
  const auto &labels = o.labels, &images = o.images;
  if (labels.empty()) throw Error(ErrorCode::InvalidArgument, "option --labels is required");
  if (!images.empty() && images.size() != labels.size())
    throw Error(ErrorCode::InvalidArgument, "--images must list one image per label map (" +
                                                std::to_string(labels.size()) + " label maps)");
  auto lut = training::targetLookup(spec.labels);
  std::vector<training::Subject> subjects;
  for (size_t i = 0; i < labels.size(); ++i)
    subjects.push_back(training::loadSubject(labels[i], images.empty() ? "" : images[i],
                                             spec.preprocessing.targetSpacing, lut, device));
  training::GenerationTable table;
  if (!o.table.empty()) {
    table = training::GenerationTable::readTsv(o.table);
  } else if (!images.empty()) {
    table = training::GenerationTable::fromImage(subjects[0].labels, subjects[0].image);
  } else {
    throw Error(ErrorCode::InvalidArgument, "--table TSV (generation classes and priors) or --images is required");
  }
  training::SynthOptions so;
  so.priorProbability = o.priorProbability;
  so.realProbability = o.realProbability.value_or(images.empty() ? 0 : 0.5);
  if (validation) so.spatial = false;
  if (!table.phases.empty()) {
    for (const auto& ph : o.phases) so.phases.push_back(table.phaseIndex(ph));
    so.maxBodyBlobs = o.bodyBlobs;
    // A CT region reaches past the organs into the body wall and the air around it, as a tile of
    // a real CT does.
    so.regionMargin = 16;
    so.maxSliceThickness = 5;  // mm: abdominal CT is read at 1-5 mm
  } else if (!o.phases.empty()) {
    throw Error(ErrorCode::InvalidArgument, "--phases needs a CT generation table (--table training/ct/...)");
  }
  std::vector<training::Subject> context;
  for (const auto& path : o.contextMaps) context.push_back(training::loadSubject(path, "", spec.preprocessing.targetSpacing, lut, device));
  if (!context.empty() && table.bodyLabel < 0)
    throw Error(ErrorCode::InvalidArgument, "--context-maps needs a CT table with a body row (training/ct/...)");
  auto synth = std::make_unique<training::Synthesizer>(std::move(subjects), std::move(table), lut, spec.preprocessing,
                                                       so, std::move(context));
  synth->setThreads(o.synthThreads);
  return synth;
}

std::unique_ptr<training::Validator> makeValidator(const DataOptions& o, const engine::BundleSpec& spec,
                                                   torch::Device device) {
  if (o.valLabels.empty()) return nullptr;
  DataOptions held = o;
  held.labels = o.valLabels, held.images.clear();
  auto synth = makeSynthesizer(held, spec, device, /*validation=*/true);
  // Brain: T1-like pairs (group synth-t1); CT: portal-venous pairs (synth-ct-portal-venous), the
  // recipes `segnode-distill synth --seed 2000` writes for the release evaluation.
  const auto& table = synth->table();
  const int phase = table.phases.empty() ? -1 : table.phaseIndex("portal_venous");
  std::vector<training::SynthBatch> cases;
  for (size_t i = 0; i < synth->subjects().size(); ++i)
    cases.push_back(synth->whole(int(i), training::Contrast::Prior, synth->subjects()[i].geometry.spacing,
                                  training::Synthesizer::wholeSeed(2000, i), 8, phase));
  return std::make_unique<training::Validator>(std::move(cases), phase < 0 ? "synth-t1" : "synth-ct-portal-venous");
}

}  // namespace segnode::distill
