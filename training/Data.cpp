#include "training/Data.h"

#include <ctime>

#include <torch/cuda.h>

#include "common/Error.h"

namespace segnode::distill {

const std::set<std::string> kDataOptions{"--labels", "--images", "--table", "--prior-probability",
                                         "--real-probability", "--device", "--val-labels"};

torch::Device deviceFrom(const cli::Args& args) {
  std::string d = args.value("--device").value_or(torch::cuda::is_available() ? "cuda" : "cpu");
  if (d == "cuda" && !torch::cuda::is_available())
    throw Error(ErrorCode::InvalidArgument, "--device cuda: no CUDA device is available (use --device cpu)");
  if (d != "cuda" && d != "cpu") throw Error(ErrorCode::InvalidArgument, "--device must be cpu or cuda, not " + d);
  return torch::Device(d == "cuda" ? torch::kCUDA : torch::kCPU);
}

std::string isoNow() {
  std::time_t t = std::time(nullptr);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return b;
}

std::unique_ptr<training::Synthesizer> makeSynthesizer(const cli::Args& args, const engine::BundleSpec& spec,
                                                       torch::Device device, bool validation,
                                                       const std::string& labelsOption) {
  auto labels = cli::splitList(args.required(labelsOption));
  std::vector<std::string> images;
  if (auto v = args.value("--images"); v && labelsOption == "--labels") images = cli::splitList(*v);
  if (!images.empty() && images.size() != labels.size())
    throw Error(ErrorCode::InvalidArgument, "--images must list one image per label map (" +
                                                std::to_string(labels.size()) + " label maps)");
  auto lut = training::targetLookup(spec.labels);
  std::vector<training::Subject> subjects;
  for (size_t i = 0; i < labels.size(); ++i)
    subjects.push_back(training::loadSubject(labels[i], images.empty() ? "" : images[i],
                                             spec.preprocessing.targetSpacing, lut, device));
  training::GenerationTable table;
  if (auto t = args.value("--table")) {
    table = training::GenerationTable::readTsv(*t);
  } else if (!images.empty()) {
    table = training::GenerationTable::fromImage(subjects[0].labels, subjects[0].image);
  } else {
    throw Error(ErrorCode::InvalidArgument, "--table TSV (generation classes and priors) or --images is required");
  }
  training::SynthOptions o;
  o.priorProbability = args.doubleValue("--prior-probability", 0.5, 0, 1);
  o.realProbability = args.doubleValue("--real-probability", images.empty() ? 0 : 0.5, 0, 1);
  if (validation) o.spatial = false;
  return std::make_unique<training::Synthesizer>(std::move(subjects), std::move(table), lut, spec.preprocessing, o);
}

std::unique_ptr<training::Validator> makeValidator(const cli::Args& args, const engine::BundleSpec& spec,
                                                   torch::Device device) {
  if (!args.value("--val-labels")) return nullptr;
  auto synth = makeSynthesizer(args, spec, device, /*validation=*/true, "--val-labels");
  std::vector<training::SynthBatch> cases;
  for (size_t i = 0; i < synth->subjects().size(); ++i)
    cases.push_back(synth->whole(int(i), training::Contrast::Prior, synth->subjects()[i].geometry.spacing,
                                  training::Synthesizer::wholeSeed(2000, i)));
  return std::make_unique<training::Validator>(std::move(cases), "synth-t1");
}

}  // namespace segnode::distill
