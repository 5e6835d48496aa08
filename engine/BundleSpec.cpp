#include "engine/BundleSpec.h"

#include <cstdio>
#include <fstream>
#include <regex>

#include "common/Error.h"

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

// Reads keys out of a YAML node and reports problems as "<file>: key 'a.b': <what>".
class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw Error(ErrorCode::BadBundle, file_ + ": key '" + key + "': " + what);
  }

  YAML::Node need(const YAML::Node& parent, const std::string& key, const std::string& path) const {
    YAML::Node n = parent[key];
    if (!n) fail(path, "missing (required)");
    return n;
  }

  template <typename T>
  T scalar(const YAML::Node& n, const std::string& path, const char* kind) const {
    if (!n.IsScalar()) fail(path, std::string("must be ") + kind);
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      fail(path, std::string("must be ") + kind + ", got '" + n.Scalar() + "'");
    }
  }

  template <typename T>
  T get(const YAML::Node& parent, const std::string& key, const std::string& path, const char* kind) const {
    return scalar<T>(need(parent, key, path), path, kind);
  }

  template <typename T>
  T getOr(const YAML::Node& parent, const std::string& key, const std::string& path, const char* kind, T def) const {
    YAML::Node n = parent[key];
    return n ? scalar<T>(n, path, kind) : def;
  }

  template <typename T>
  std::vector<T> list(const YAML::Node& n, const std::string& path, const char* kind) const {
    if (!n.IsSequence()) fail(path, std::string("must be a list of ") + kind);
    std::vector<T> out;
    for (size_t i = 0; i < n.size(); ++i) out.push_back(scalar<T>(n[i], path + "[" + std::to_string(i) + "]", kind));
    return out;
  }

  template <typename T>
  std::array<T, 3> triple(const YAML::Node& n, const std::string& path, const char* kind) const {
    auto v = list<T>(n, path, kind);
    if (v.size() != 3) fail(path, "must have 3 entries (x, y, z), has " + std::to_string(v.size()));
    return {v[0], v[1], v[2]};
  }

  template <typename T>
  std::vector<std::array<T, 3>> triples(const YAML::Node& n, const std::string& path, const char* kind) const {
    if (!n.IsSequence()) fail(path, "must be a list of [x, y, z] lists");
    std::vector<std::array<T, 3>> out;
    for (size_t i = 0; i < n.size(); ++i) out.push_back(triple<T>(n[i], path + "[" + std::to_string(i) + "]", kind));
    return out;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
};

CodedConcept readCode(const Reader& r, const YAML::Node& n, const std::string& path) {
  CodedConcept c;
  if (!n) return c;
  if (!n.IsMap()) r.fail(path, "must be a map with scheme, value, meaning");
  c.scheme = r.get<std::string>(n, "scheme", path + ".scheme", "a coding scheme designator such as SCT");
  c.value = r.get<std::string>(n, "value", path + ".value", "a code value");
  c.meaning = r.get<std::string>(n, "meaning", path + ".meaning", "a code meaning");
  return c;
}

std::vector<LabelInfo> readLabels(const Reader& r, const YAML::Node& n) {
  if (!n || !n.IsSequence() || n.size() < 2) r.fail("labels", "must list background plus at least one structure");
  std::vector<LabelInfo> labels;
  for (size_t i = 0; i < n.size(); ++i) {
    std::string p = "labels[" + std::to_string(i) + "]";
    LabelInfo l;
    l.value = r.get<int>(n[i], "value", p + ".value", "an integer 0..65535");
    l.name = r.get<std::string>(n[i], "name", p + ".name", "a name");
    if (n[i]["color"]) {
      auto c = r.triple<int>(n[i]["color"], p + ".color", "0..255");
      for (int v : c)
        if (v < 0 || v > 255) r.fail(p + ".color", "entries must be 0..255");
      l.color = c;
    }
    l.category = readCode(r, n[i]["category"], p + ".category");
    l.type = readCode(r, n[i]["type"], p + ".type");
    l.typeModifier = readCode(r, n[i]["type_modifier"], p + ".type_modifier");
    if (n[i]["source_values"]) l.sourceValues = r.list<int>(n[i]["source_values"], p + ".source_values", "integers");
    if (l.value < 0 || l.value > 65535) r.fail(p + ".value", "must be 0..65535");
    for (const auto& prev : labels)
      if (prev.value == l.value) r.fail(p + ".value", "value " + std::to_string(l.value) + " is used twice");
    labels.push_back(l);
  }
  if (labels[0].value != 0) r.fail("labels[0].value", "the first label must be background with value 0");
  return labels;
}

PreprocessingSpec readPreprocessing(const Reader& r, const YAML::Node& root) {
  YAML::Node n = r.need(root, "preprocessing", "preprocessing");
  PreprocessingSpec p;
  p.targetSpacing = r.triple<double>(r.need(n, "target_spacing", "preprocessing.target_spacing"),
                                     "preprocessing.target_spacing", "spacings in mm");
  for (double s : p.targetSpacing)
    if (!(s > 0)) r.fail("preprocessing.target_spacing", "spacings must be > 0");
  auto norm = r.get<std::string>(n, "normalization", "preprocessing.normalization", "zscore or ct");
  if (norm == "zscore") p.normalization = Normalization::ZScore;
  else if (norm == "ct") {
    p.normalization = Normalization::CT;
    YAML::Node ct = r.need(n, "ct", "preprocessing.ct");
    p.clipLow = r.get<double>(ct, "clip_low", "preprocessing.ct.clip_low", "a number (HU)");
    p.clipHigh = r.get<double>(ct, "clip_high", "preprocessing.ct.clip_high", "a number (HU)");
    p.mean = r.get<double>(ct, "mean", "preprocessing.ct.mean", "a number");
    p.std = r.get<double>(ct, "std", "preprocessing.ct.std", "a number");
    if (!(p.clipHigh > p.clipLow)) r.fail("preprocessing.ct", "clip_high must be above clip_low");
    if (!(p.std > 0)) r.fail("preprocessing.ct.std", "must be > 0");
  } else r.fail("preprocessing.normalization", "must be 'zscore' (MR) or 'ct', got '" + norm + "'");
  auto interp = r.getOr<std::string>(n, "image_interpolation", "preprocessing.image_interpolation",
                                     "linear or cubic", "linear");
  if (interp == "linear") p.imageInterpolation = Interpolation::Linear;
  else if (interp == "cubic") p.imageInterpolation = Interpolation::Cubic;
  else r.fail("preprocessing.image_interpolation", "must be 'linear' or 'cubic', got '" + interp + "'");
  p.cropNonzero = r.getOr<bool>(n, "crop_nonzero", "preprocessing.crop_nonzero", "true or false", true);
  return p;
}

ArchitectureSpec readArchitecture(const Reader& r, const YAML::Node& root, int numClasses) {
  YAML::Node n = r.need(root, "architecture", "architecture");
  ArchitectureSpec a;
  a.inChannels = r.getOr<int>(n, "in_channels", "architecture.in_channels", "an integer", 1);
  a.numClasses = numClasses;
  int stages = r.get<int>(n, "n_stages", "architecture.n_stages", "an integer");
  a.features = r.list<int>(r.need(n, "features_per_stage", "architecture.features_per_stage"),
                           "architecture.features_per_stage", "integers");
  a.kernelSizes = r.triples<int>(r.need(n, "kernel_sizes", "architecture.kernel_sizes"), "architecture.kernel_sizes", "odd integers");
  a.strides = r.triples<int>(r.need(n, "strides", "architecture.strides"), "architecture.strides", "integers");
  a.convsPerStage = r.list<int>(r.need(n, "n_conv_per_stage", "architecture.n_conv_per_stage"),
                                "architecture.n_conv_per_stage", "integers");
  a.convsPerStageDecoder = r.list<int>(r.need(n, "n_conv_per_stage_decoder", "architecture.n_conv_per_stage_decoder"),
                                       "architecture.n_conv_per_stage_decoder", "integers");
  a.deepSupervision = r.getOr<bool>(n, "deep_supervision", "architecture.deep_supervision", "true or false", false);
  a.convBias = r.getOr<bool>(n, "conv_bias", "architecture.conv_bias", "true or false", true);
  if (int(a.features.size()) != stages)
    r.fail("architecture.features_per_stage", "has " + std::to_string(a.features.size()) +
                                                  " entries but n_stages is " + std::to_string(stages));
  a.validate(r.file());
  return a;
}

InferenceSpec readInference(const Reader& r, const YAML::Node& root) {
  YAML::Node n = r.need(root, "inference", "inference");
  InferenceSpec s;
  s.patchSize = r.triple<int64_t>(r.need(n, "patch_size", "inference.patch_size"), "inference.patch_size", "integers");
  s.tileStep = r.getOr<double>(n, "tile_step", "inference.tile_step", "a number in (0, 1]", 0.5);
  s.gaussian = r.getOr<bool>(n, "gaussian", "inference.gaussian", "true or false", true);
  if (n["mirror_axes"]) s.mirrorAxes = r.list<int>(n["mirror_axes"], "inference.mirror_axes", "axes 0..2");
  s.batchSize = r.getOr<int>(n, "batch_size", "inference.batch_size", "an integer >= 1", 1);
  auto precision = r.getOr<std::string>(n, "precision", "inference.precision", "fp32 or bf16", "fp32");
  if (precision == "bf16") s.precision = Precision::BFloat16;
  else if (precision != "fp32") r.fail("inference.precision", "must be 'fp32' or 'bf16', got '" + precision + "'");
  if (!(s.tileStep > 0 && s.tileStep <= 1)) r.fail("inference.tile_step", "must be in (0, 1]");
  for (auto v : s.patchSize)
    if (v < 1) r.fail("inference.patch_size", "entries must be >= 1");
  for (int a : s.mirrorAxes)
    if (a < 0 || a > 2) r.fail("inference.mirror_axes", "axes must be 0, 1 or 2");
  if (s.batchSize < 1) r.fail("inference.batch_size", "must be >= 1");
  return s;
}

YAML::Node codeNode(const CodedConcept& c) {
  YAML::Node n;
  n["scheme"] = c.scheme;
  n["value"] = c.value;
  n["meaning"] = c.meaning;
  return n;
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

bool BundleSpec::untrained() const {
  return provenance && provenance["untrained"] && provenance["untrained"].as<bool>(false);
}

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
  const std::filesystem::path directory = file.parent_path();
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw Error(ErrorCode::BadBundle, file.string() + ": not valid YAML: " + e.what());
  }
  Reader r(file.string());
  if (!root.IsMap()) r.fail("(top level)", "must be a map");
  BundleSpec b;
  b.directory = directory;
  b.name = r.get<std::string>(root, "name", "name", "a name");
  static const std::regex nameRe("[a-z0-9][a-z0-9._-]*");
  if (!std::regex_match(b.name, nameRe)) r.fail("name", "use lower-case letters, digits, '.', '_' and '-'");
  auto ver = r.get<std::string>(root, "version", "version", "a semantic version");
  if (!SemVer::parse(ver, b.version)) r.fail("version", "must be MAJOR.MINOR.PATCH, got '" + ver + "'");
  b.created = r.getOr<std::string>(root, "created", "created", "an ISO 8601 time", "");
  YAML::Node task = r.need(root, "task", "task");
  auto modality = r.get<std::string>(task, "modality", "task.modality", "MR or CT");
  if (modality == "MR") b.modality = Modality::MR;
  else if (modality == "CT") b.modality = Modality::CT;
  else r.fail("task.modality", "must be MR or CT, got '" + modality + "'");
  b.bodyPart = r.getOr<std::string>(task, "body_part", "task.body_part", "a DICOM body part", "");
  b.description = r.getOr<std::string>(task, "description", "task.description", "text", "");
  b.labels = readLabels(r, root["labels"]);
  b.preprocessing = readPreprocessing(r, root);
  b.architecture = readArchitecture(r, root, int(b.labels.size()));
  b.inference = readInference(r, root);
  b.provenance = root["provenance"] ? root["provenance"] : YAML::Node(YAML::NodeType::Map);
  b.metrics = root["metrics"] ? root["metrics"] : YAML::Node(YAML::NodeType::Map);
  if (isTemplate) return b;
  YAML::Node w = r.need(root, "weights", "weights");
  b.weightsFile = r.getOr<std::string>(w, "file", "weights.file", "a file name", "weights.safetensors");
  if (b.weightsFile.find('/') != std::string::npos) r.fail("weights.file", "must be a file name inside the bundle");
  b.weightsSha256 = r.get<std::string>(w, "sha256", "weights.sha256", "a hex SHA-256");
  static const std::regex hexRe("[0-9a-f]{64}");
  if (!std::regex_match(b.weightsSha256, hexRe)) r.fail("weights.sha256", "must be 64 lower-case hex digits");
  return b;
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
  root["inference"]["tile_step"] = inf.tileStep;
  root["inference"]["gaussian"] = inf.gaussian;
  root["inference"]["mirror_axes"] = flowList(inf.mirrorAxes);
  root["inference"]["batch_size"] = inf.batchSize;
  root["inference"]["precision"] = inf.precision == Precision::BFloat16 ? "bf16" : "fp32";
  root["provenance"] = b.provenance ? b.provenance : YAML::Node(YAML::NodeType::Map);
  root["metrics"] = b.metrics ? b.metrics : YAML::Node(YAML::NodeType::Map);
  root["weights"]["file"] = b.weightsFile;
  root["weights"]["sha256"] = b.weightsSha256;
  YAML::Emitter out;
  out << root;
  std::ofstream f(yamlFile);
  f << "# segnode model bundle (DESIGN §4). Edit with care: weights.sha256 guards the weights file.\n"
    << out.c_str() << "\n";
  if (!f) throw Error(ErrorCode::Io, yamlFile.string() + ": write failed");
}

}  // namespace segnode::engine
