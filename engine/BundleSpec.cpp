#include "engine/BundleSpec.h"

#include <cstdio>
#include <fstream>
#include <regex>

#include "common/Error.h"
#include "common/Yaml.h"

namespace segnode::engine {

bool SemVer::parse(const std::string& text, SemVer& out) {
  static const std::regex re(R"((\d+)\.(\d+)\.(\d+))");
  std::smatch m;
  if (!std::regex_match(text, m, re)) return false;
  out.major = std::stoi(m[1]);
  out.minor = std::stoi(m[2]);
  out.patch = std::stoi(m[3]);
  return true;
}
std::string SemVer::toString() const {
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
}
bool SemVer::operator<(const SemVer& o) const {
  if (major != o.major) return major < o.major;
  if (minor != o.minor) return minor < o.minor;
  return patch < o.patch;
}
bool SemVer::operator==(const SemVer& o) const {
  return major == o.major && minor == o.minor && patch == o.patch;
}

const char* toString(Modality m) { return m == Modality::MR ? "MR" : "CT"; }
const char* toString(Normalization n) { return n == Normalization::ZScore ? "zscore" : "ct"; }

namespace {

CodedConcept readCode(yaml::Reader& r, const std::string& path) {
  CodedConcept c;
  if (!r.has(path)) return c;
  c.scheme = r.get<std::string>(path + ".scheme", "a coding scheme designator such as SCT");
  c.value = r.get<std::string>(path + ".value", "a code value");
  c.meaning = r.get<std::string>(path + ".meaning", "a code meaning");
  return c;
}

std::vector<LabelInfo> readLabels(yaml::Reader& r) {
  size_t n = r.size("labels", "a list of labels");
  if (n < 2) r.fail("labels", "must list background plus at least one structure");
  std::vector<LabelInfo> labels;
  for (size_t i = 0; i < n; ++i) {
    std::string p = yaml::Reader::item("labels", i);
    LabelInfo l;
    l.value = r.get<int>(p + ".value", "an integer 0..65535");
    l.name = r.get<std::string>(p + ".name", "a name");
    if (r.has(p + ".color")) l.color = r.triple<int>(p + ".color", "0..255");
    for (int v : l.color)
      if (v < 0 || v > 255) r.fail(p + ".color", "entries must be 0..255");
    l.category = readCode(r, p + ".category");
    l.type = readCode(r, p + ".type");
    l.typeModifier = readCode(r, p + ".type_modifier");
    l.sourceValues = r.list<int>(p + ".source_values", "an integer");
    if (l.value < 0 || l.value > 65535) r.fail(p + ".value", "must be 0..65535");
    for (const auto& prev : labels)
      if (prev.value == l.value) r.fail(p + ".value", "value " + std::to_string(l.value) + " is used twice");
    labels.push_back(l);
  }
  if (labels[0].value != 0) r.fail("labels[0].value", "the first label must be background with value 0");
  return labels;
}

PreprocessingSpec readPreprocessing(yaml::Reader& r) {
  PreprocessingSpec p;
  r.require("preprocessing");
  p.targetSpacing = r.triple<double>("preprocessing.target_spacing", "spacings in mm");
  for (double s : p.targetSpacing)
    if (!(s > 0)) r.fail("preprocessing.target_spacing", "spacings must be > 0");
  auto norm = r.get<std::string>("preprocessing.normalization", "zscore or ct");
  if (norm == "zscore") p.normalization = Normalization::ZScore;
  else if (norm == "ct") {
    p.normalization = Normalization::CT;
    p.clipLow = r.get<double>("preprocessing.ct.clip_low", "a number (HU)");
    p.clipHigh = r.get<double>("preprocessing.ct.clip_high", "a number (HU)");
    p.mean = r.get<double>("preprocessing.ct.mean", "a number");
    p.std = r.get<double>("preprocessing.ct.std", "a number");
    if (!(p.clipHigh > p.clipLow)) r.fail("preprocessing.ct", "clip_high must be above clip_low");
    if (!(p.std > 0)) r.fail("preprocessing.ct.std", "must be > 0");
  } else r.fail("preprocessing.normalization", "must be 'zscore' (MR) or 'ct', got '" + norm + "'");
  auto interp = r.getOr<std::string>("preprocessing.image_interpolation", "linear or cubic", "linear");
  if (interp == "linear") p.imageInterpolation = Interpolation::Linear;
  else if (interp == "cubic") p.imageInterpolation = Interpolation::Cubic;
  else r.fail("preprocessing.image_interpolation", "must be 'linear' or 'cubic', got '" + interp + "'");
  p.cropNonzero = r.getOr<bool>("preprocessing.crop_nonzero", "true or false", true);
  p.cropForeground = r.getOr<double>("preprocessing.crop_foreground.fraction", "a fraction of the 99th percentile", 0);
  p.cropForegroundMarginMm = r.getOr<double>("preprocessing.crop_foreground.margin_mm", "millimetres", 8);
  if (!(p.cropForeground >= 0 && p.cropForeground < 1))
    r.fail("preprocessing.crop_foreground.fraction", "must be in [0, 1)", "use 0 (off) or about 0.1");
  if (!(p.cropForegroundMarginMm >= 0)) r.fail("preprocessing.crop_foreground.margin_mm", "must be >= 0");
  if (r.has("preprocessing.crop_foreground.above")) {
    p.cropForegroundAbove = r.get<double>("preprocessing.crop_foreground.above", "a value in the image's units (CT: HU)");
    if (p.cropForeground > 0)
      r.fail("preprocessing.crop_foreground", "has both `fraction` and `above`",
             "keep one: fraction (MR, of the 99th percentile) or above (CT, e.g. -500 HU)");
  }
  return p;
}

ArchitectureSpec readArchitecture(yaml::Reader& r, int numClasses) {
  ArchitectureSpec a;
  r.require("architecture");
  a.inChannels = r.getOr<int>("architecture.in_channels", "an integer", 1);
  a.numClasses = numClasses;
  int stages = r.get<int>("architecture.n_stages", "an integer");
  a.features = r.list<int>(r.require("architecture.features_per_stage"), "an integer");
  a.kernelSizes = r.triples<int>("architecture.kernel_sizes", "odd integers");
  a.strides = r.triples<int>("architecture.strides", "integers");
  a.convsPerStage = r.list<int>(r.require("architecture.n_conv_per_stage"), "an integer");
  a.convsPerStageDecoder = r.list<int>(r.require("architecture.n_conv_per_stage_decoder"), "an integer");
  a.deepSupervision = r.getOr<bool>("architecture.deep_supervision", "true or false", false);
  a.convBias = r.getOr<bool>("architecture.conv_bias", "true or false", true);
  r.finish();  // validate() below reads the lists: their types must be right first
  if (int(a.features.size()) != stages)
    r.fail("architecture.features_per_stage", "has " + std::to_string(a.features.size()) +
                                                  " entries but n_stages is " + std::to_string(stages));
  a.validate(r.file());
  return a;
}

InferenceSpec readInference(yaml::Reader& r) {
  InferenceSpec s;
  r.require("inference");
  s.patchSize = r.triple<int64_t>("inference.patch_size", "integers");
  s.tileStep = r.getOr<double>("inference.tile_step", "a number in (0, 1]", 0.5);
  s.gaussian = r.getOr<bool>("inference.gaussian", "true or false", true);
  s.mirrorAxes = r.list<int>("inference.mirror_axes", "an axis 0..2");
  s.batchSize = r.getOr<int>("inference.batch_size", "an integer >= 1", 1);
  const std::string absmaxKey = "inference.int8_calibration.activation_absmax";
  for (size_t i = 0, n = r.size(absmaxKey, "[[a number per channel], ...]"); i < n; ++i) {
    s.int8.activationAbsmax.push_back(r.list<double>(yaml::Reader::item(absmaxKey, i), "a number >= 0"));
    for (double v : s.int8.activationAbsmax.back())
      if (!(v >= 0)) r.fail(yaml::Reader::item(absmaxKey, i), "entries must be >= 0", "run segnode-distill calibrate again");
  }
  s.int8.images = r.getOr<std::string>("inference.int8_calibration.images", "text", "");
  auto precision = r.getOr<std::string>("inference.precision", "fp32, bf16 or int8", "fp32");
  if (!parsePrecision(precision, s.precision))
    r.fail("inference.precision", "must be 'fp32', 'bf16' or 'int8', got '" + precision + "'");
  if (s.precision == Precision::Int8 && s.int8.activationAbsmax.empty())
    r.fail("inference.precision", "int8 needs inference.int8_calibration", "run segnode-distill calibrate");
  if (!(s.tileStep > 0 && s.tileStep <= 1)) r.fail("inference.tile_step", "must be in (0, 1]");
  for (auto v : s.patchSize)
    if (v < 1) r.fail("inference.patch_size", "entries must be >= 1");
  for (int a : s.mirrorAxes)
    if (a < 0 || a > 2) r.fail("inference.mirror_axes", "axes must be 0, 1 or 2");
  if (s.batchSize < 1) r.fail("inference.batch_size", "must be >= 1");
  return s;
}

PlausibilitySpec readPlausibility(yaml::Reader& r, const std::vector<LabelInfo>& labels) {
  PlausibilitySpec p;
  if (!r.has("plausibility")) return p;
  p.declared = true;
  auto range = [&](const std::string& key) {
    if (!r.has(key)) return PlausibilitySpec::Range{0, 0};
    auto v = r.list<double>(key, "a number");
    if (v.size() != 2 || !(v[0] >= 0) || !(v[1] >= v[0])) r.fail(key, "must be [low, high] with 0 <= low <= high");
    return PlausibilitySpec::Range{v[0], v[1]};
  };
  p.labelledVolumeMl = range("plausibility.labelled_volume_ml");
  p.structuresPresent = r.getOr<double>("plausibility.structures_present", "a fraction 0..1", 0);
  p.minStructureMl = r.getOr<double>("plausibility.min_structure_ml", "millilitres", 0);
  p.leftRightRatio = range("plausibility.left_right_ratio");
  const std::string per = "plausibility.structure_volume_ml";
  if (r.has(per))
    for (const auto& kv : r.at(per)) {
      auto name = kv.first.as<std::string>();
      bool known = false;
      for (const auto& l : labels) known |= l.name == name;
      if (!known) r.fail(per + "." + name, "names no label of this bundle");
      p.structureVolumeMl.emplace_back(name, range(per + "." + name));
    }
  p.minConnectedShare = r.getOr<double>("plausibility.min_connected_share", "a fraction 0..1", 0);
  p.minConfidence = r.getOr<double>("plausibility.min_confidence", "a probability 0..1", 0);
  if (r.has("plausibility.lowest_input_at_most"))
    p.lowestInputAtMost = r.getOr<double>("plausibility.lowest_input_at_most", "an intensity (HU for CT)", 0);
  p.source = r.getOr<std::string>("plausibility.source", "text", "");
  if (!(p.structuresPresent >= 0 && p.structuresPresent <= 1))
    r.fail("plausibility.structures_present", "must be a fraction in [0, 1]");
  if (!(p.minConfidence >= 0 && p.minConfidence <= 1)) r.fail("plausibility.min_confidence", "must be in [0, 1]");
  if (!(p.minConnectedShare >= 0 && p.minConnectedShare <= 1))
    r.fail("plausibility.min_connected_share", "must be a fraction in [0, 1]");
  return p;
}

PostprocessingSpec readPostprocessing(yaml::Reader& r, const std::vector<LabelInfo>& labels) {
  PostprocessingSpec p;
  const std::string key = "postprocessing.largest_component";
  if (!r.has(key)) return p;
  p.largestComponent = r.list<int>(key, "a label value");
  for (int v : p.largestComponent) {
    bool known = false;
    for (size_t i = 1; i < labels.size(); ++i) known |= labels[i].value == v;
    if (!known) r.fail(key, "value " + std::to_string(v) + " is no foreground label of this bundle", "list values of `labels`, not 0");
  }
  return p;
}

YAML::Node codeNode(const CodedConcept& c) {
  YAML::Node n;
  n["scheme"] = c.scheme;
  n["value"] = c.value;
  n["meaning"] = c.meaning;
  return n;
}

// "0.6", not yaml-cpp's round-trip digits "0.59999999999999998".
std::string shortNumber(double v, int digits = 6) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

template <typename T>
YAML::Node flowList(const T& values) {
  YAML::Node n(YAML::NodeType::Sequence);
  for (const auto& v : values) n.push_back(v);
  n.SetStyle(YAML::EmitterStyle::Flow);
  return n;
}

}  // namespace

void ArchitectureSpec::validate(const std::string& where) const {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(ErrorCode::BadBundle, where + ": key 'architecture." + key + "': " + what);
  };
  size_t n = features.size();
  if (n < 1 || n > 10) fail("n_stages", "must be 1..10");
  if (kernelSizes.size() != n) fail("kernel_sizes", "needs one [x, y, z] per stage (" + std::to_string(n) + ")");
  if (strides.size() != n) fail("strides", "needs one [x, y, z] per stage (" + std::to_string(n) + ")");
  if (convsPerStage.size() != n) fail("n_conv_per_stage", "needs one entry per stage (" + std::to_string(n) + ")");
  if (convsPerStageDecoder.size() != n - 1)
    fail("n_conv_per_stage_decoder", "needs one entry per stage but the deepest (" + std::to_string(n - 1) + ")");
  for (size_t s = 0; s < n; ++s) {
    if (features[s] < 1 || features[s] > 4096) fail("features_per_stage", "entries must be 1..4096");
    for (int k : kernelSizes[s])
      if (k < 1 || k % 2 == 0) fail("kernel_sizes", "kernel sizes must be odd and >= 1");
    for (int st : strides[s])
      if (st < 1 || st > 4) fail("strides", "strides must be 1..4");
    if (convsPerStage[s] < 1) fail("n_conv_per_stage", "entries must be >= 1");
    if (s + 1 < n && convsPerStageDecoder[s] < 1) fail("n_conv_per_stage_decoder", "entries must be >= 1");
  }
  if (inChannels < 1) fail("in_channels", "must be >= 1");
  if (numClasses < 2) throw Error(ErrorCode::BadBundle, where + ": key 'labels': need background plus one label");
}

ArchitectureSpec ArchitectureSpec::withWidthDivisor(int divisor, int minFeatures) const {
  ArchitectureSpec s = *this;
  for (int& f : s.features) f = std::max(minFeatures, f / divisor);
  return s;
}

int64_t ArchitectureSpec::parameterCount() const {
  auto weights = [](int64_t in, int64_t out, const std::array<int, 3>& k) { return in * out * k[0] * k[1] * k[2]; };
  // conv (+ bias if convBias) -> InstanceNorm (weight + bias)
  auto convNorm = [&](int64_t in, int64_t out, const std::array<int, 3>& k) {
    return weights(in, out, k) + (convBias ? out : 0) + 2 * out;
  };
  int64_t total = 0;
  const int n = stages();
  for (int s = 0; s < n; ++s) {
    for (int c = 0; c < convsPerStage[size_t(s)]; ++c) {
      int64_t in = c > 0 ? features[size_t(s)] : (s == 0 ? inChannels : features[size_t(s - 1)]);
      total += convNorm(in, features[size_t(s)], kernelSizes[size_t(s)]);
    }
  }
  for (int s = n - 2; s >= 0; --s) {
    int64_t f = features[size_t(s)];
    total += weights(features[size_t(s + 1)], f, strides[size_t(s + 1)]) + f;  // transposed conv, with bias
    for (int c = 0; c < convsPerStageDecoder[size_t(s)]; ++c) total += convNorm(c == 0 ? 2 * f : f, f, kernelSizes[size_t(s)]);
    total += weights(f, numClasses, {1, 1, 1}) + numClasses;  // segmentation head of this decoder stage
  }
  return total;
}

ArchitectureSpec ArchitectureSpec::nnunetDefault(int n, int numClasses, int inChannels) {
  ArchitectureSpec a;
  a.inChannels = inChannels;
  a.numClasses = numClasses;
  for (int s = 0; s < n; ++s) {
    a.features.push_back(std::min(32 << s, 320));
    a.kernelSizes.push_back({3, 3, 3});
    a.strides.push_back(s == 0 ? std::array<int, 3>{1, 1, 1} : std::array<int, 3>{2, 2, 2});
    a.convsPerStage.push_back(2);
    if (s + 1 < n) a.convsPerStageDecoder.push_back(2);
  }
  return a;
}

bool BundleSpec::untrained() const { return provenance.value("untrained", false); }

BundleSpec loadBundleSpec(const std::filesystem::path& directory) {
  std::filesystem::path file = directory / "bundle.yaml";
  if (!std::filesystem::exists(file))
    throw Error(ErrorCode::BadBundle, file.string() + ": missing (a bundle directory needs bundle.yaml + weights)");
  return parseBundleFile(file, /*isTemplate=*/false);
}

BundleSpec loadBundleTemplate(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) throw Error(ErrorCode::NotFound, file.string() + ": no such template");
  return parseBundleFile(file, /*isTemplate=*/true);
}

BundleSpec parseBundleFile(const std::filesystem::path& file, bool isTemplate) {
  yaml::Reader r(file, ErrorCode::BadBundle);
  BundleSpec b;
  b.directory = file.parent_path();
  b.name = r.get<std::string>("name", "a name");
  static const std::regex nameRe("[a-z0-9][a-z0-9._-]*");
  if (!std::regex_match(b.name, nameRe)) r.fail("name", "use lower-case letters, digits, '.', '_' and '-'");
  auto ver = r.get<std::string>("version", "a semantic version");
  if (!SemVer::parse(ver, b.version)) r.fail("version", "must be MAJOR.MINOR.PATCH, got '" + ver + "'");
  b.created = r.getOr<std::string>("created", "an ISO 8601 time", "");
  auto modality = r.get<std::string>("task.modality", "MR or CT");
  if (modality == "MR") b.modality = Modality::MR;
  else if (modality == "CT") b.modality = Modality::CT;
  else r.fail("task.modality", "must be MR or CT, got '" + modality + "'");
  b.bodyPart = r.getOr<std::string>("task.body_part", "a DICOM body part", "");
  b.description = r.getOr<std::string>("task.description", "text", "");
  b.labels = readLabels(r);
  b.preprocessing = readPreprocessing(r);
  b.architecture = readArchitecture(r, int(b.labels.size()));
  b.inference = readInference(r);
  b.plausibility = readPlausibility(r, b.labels);
  b.postprocessing = readPostprocessing(r, b.labels);
  b.provenance = r.has("provenance") ? yaml::toJson(r.at("provenance")) : nlohmann::ordered_json::object();
  b.metrics = r.has("metrics") ? yaml::toJson(r.at("metrics")) : nlohmann::ordered_json::object();
  if (!isTemplate) {
    b.weightsFile = r.getOr<std::string>("weights.file", "a file name", "weights.safetensors");
    if (b.weightsFile.find('/') != std::string::npos) r.fail("weights.file", "must be a file name inside the bundle");
    b.weightsSha256 = r.get<std::string>("weights.sha256", "a hex SHA-256");
    static const std::regex hexRe("[0-9a-f]{64}");
    if (!std::regex_match(b.weightsSha256, hexRe)) r.fail("weights.sha256", "must be 64 lower-case hex digits");
  }
  r.finish();
  return b;
}

const char* toString(Precision p) {
  return p == Precision::BFloat16 ? "bf16" : p == Precision::Int8 ? "int8" : "fp32";
}

bool parsePrecision(const std::string& text, Precision& out) {
  if (text == "fp32") out = Precision::Float32;
  else if (text == "bf16") out = Precision::BFloat16;
  else if (text == "int8") out = Precision::Int8;
  else return false;
  return true;
}

void saveBundleSpec(const BundleSpec& b, const std::filesystem::path& yamlFile) {
  YAML::Node root;
  root["name"] = b.name;
  root["version"] = b.version.toString();
  root["created"] = b.created;
  root["task"]["modality"] = toString(b.modality);
  root["task"]["body_part"] = b.bodyPart;
  root["task"]["description"] = b.description;
  for (const auto& l : b.labels) {
    YAML::Node n;
    n["value"] = l.value;
    n["name"] = l.name;
    n["color"] = flowList(l.color);
    if (!l.category.empty()) n["category"] = codeNode(l.category);
    if (!l.type.empty()) n["type"] = codeNode(l.type);
    if (!l.typeModifier.empty()) n["type_modifier"] = codeNode(l.typeModifier);
    if (!l.sourceValues.empty()) n["source_values"] = flowList(l.sourceValues);
    root["labels"].push_back(n);
  }
  const auto& p = b.preprocessing;
  root["preprocessing"]["target_spacing"] = flowList(p.targetSpacing);
  root["preprocessing"]["normalization"] = toString(p.normalization);
  if (p.normalization == Normalization::CT) {
    root["preprocessing"]["ct"]["clip_low"] = p.clipLow;
    root["preprocessing"]["ct"]["clip_high"] = p.clipHigh;
    root["preprocessing"]["ct"]["mean"] = p.mean;
    root["preprocessing"]["ct"]["std"] = p.std;
  }
  root["preprocessing"]["image_interpolation"] = p.imageInterpolation == Interpolation::Cubic ? "cubic" : "linear";
  root["preprocessing"]["crop_nonzero"] = p.cropNonzero;
  if (p.cropForeground > 0) root["preprocessing"]["crop_foreground"]["fraction"] = shortNumber(p.cropForeground);
  if (p.cropForegroundAbove) root["preprocessing"]["crop_foreground"]["above"] = shortNumber(*p.cropForegroundAbove);
  if (p.cropsForeground()) root["preprocessing"]["crop_foreground"]["margin_mm"] = shortNumber(p.cropForegroundMarginMm);
  const auto& a = b.architecture;
  YAML::Node arch;
  arch["in_channels"] = a.inChannels;
  arch["n_stages"] = a.stages();
  arch["features_per_stage"] = flowList(a.features);
  for (const auto& k : a.kernelSizes) arch["kernel_sizes"].push_back(flowList(k));
  for (const auto& s : a.strides) arch["strides"].push_back(flowList(s));
  arch["n_conv_per_stage"] = flowList(a.convsPerStage);
  arch["n_conv_per_stage_decoder"] = flowList(a.convsPerStageDecoder);
  arch["deep_supervision"] = a.deepSupervision;
  arch["conv_bias"] = a.convBias;
  root["architecture"] = arch;
  const auto& inf = b.inference;
  root["inference"]["patch_size"] = flowList(inf.patchSize);
  root["inference"]["tile_step"] = shortNumber(inf.tileStep, 10);
  root["inference"]["gaussian"] = inf.gaussian;
  root["inference"]["mirror_axes"] = flowList(inf.mirrorAxes);
  root["inference"]["batch_size"] = inf.batchSize;
  root["inference"]["precision"] = toString(inf.precision);
  if (!inf.int8.activationAbsmax.empty()) {
    YAML::Node cal;
    cal["images"] = inf.int8.images;
    for (const auto& conv : inf.int8.activationAbsmax) {
      std::vector<std::string> absmax;  // 5 digits: the scale's precision
      for (double v : conv) absmax.push_back(shortNumber(v, 5));
      cal["activation_absmax"].push_back(flowList(absmax));
    }
    root["inference"]["int8_calibration"] = cal;
  }
  if (const auto& keep = b.postprocessing.largestComponent; !keep.empty())
    root["postprocessing"]["largest_component"] = flowList(keep);
  if (const auto& q = b.plausibility; q.declared) {
    YAML::Node n;
    auto range = [](const PlausibilitySpec::Range& v) {
      return flowList(std::vector<std::string>{shortNumber(v[0], 4), shortNumber(v[1], 4)});
    };
    if (q.labelledVolumeMl[1] > 0) n["labelled_volume_ml"] = range(q.labelledVolumeMl);
    if (q.structuresPresent > 0) {
      n["structures_present"] = shortNumber(q.structuresPresent, 3);
      n["min_structure_ml"] = shortNumber(q.minStructureMl, 3);
    }
    if (q.leftRightRatio[1] > 0) n["left_right_ratio"] = range(q.leftRightRatio);
    for (const auto& [name, v] : q.structureVolumeMl) n["structure_volume_ml"][name] = range(v);
    if (q.minConnectedShare > 0) n["min_connected_share"] = shortNumber(q.minConnectedShare, 3);
    if (q.minConfidence > 0) n["min_confidence"] = shortNumber(q.minConfidence, 3);
    if (q.lowestInputAtMost) n["lowest_input_at_most"] = shortNumber(*q.lowestInputAtMost, 4);
    if (!q.source.empty()) n["source"] = q.source;
    root["plausibility"] = n;
  }
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& kv : root) out << YAML::Key << kv.first << YAML::Value << kv.second;
  out << YAML::Key << "provenance" << YAML::Value;
  yaml::emit(out, b.provenance.is_object() ? b.provenance : nlohmann::ordered_json::object());
  out << YAML::Key << "metrics" << YAML::Value;
  yaml::emit(out, b.metrics.is_object() ? b.metrics : nlohmann::ordered_json::object());
  out << YAML::Key << "weights" << YAML::Value << YAML::BeginMap << YAML::Key << "file" << YAML::Value << b.weightsFile
      << YAML::Key << "sha256" << YAML::Value << b.weightsSha256 << YAML::EndMap << YAML::EndMap;
  std::ofstream f(yamlFile);
  f << "# segnode model bundle (DESIGN §4). Edit with care: weights.sha256 guards the weights file.\n"
    << out.c_str() << "\n";
  if (!f) throw Error(ErrorCode::Io, yamlFile.string() + ": write failed");
}

}  // namespace segnode::engine
