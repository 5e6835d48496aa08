#pragma once
// The typed form of a model bundle's bundle.yaml (DESIGN §4). Parsed once and validated; the
// network, preprocessing and inference settings are all built from it. No LibTorch here.
//
// Axis order: every per-axis list (target_spacing, kernel_sizes, strides, patch_size) is given in
// the canonical orientation's (x, y, z) = (L, P, S) order that the engine reorients inputs to.
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/Geometry.h"

namespace segnode::engine {

enum class Modality { MR, CT };
enum class Normalization { ZScore, CT };
enum class Interpolation { Nearest, Linear, Cubic };
// Arithmetic of the network at inference. bf16 runs on the bf16/AMX units of recent CPUs; its
// accuracy must be measured per model before a bundle opts in.
// Int8: 8-bit convolutions on oneDNN (VNNI / AMX-INT8) with the bundle's calibration
// (InferenceSpec::int8); the first convolution, norms, upsampling and head stay float32.
enum class Precision { Float32, BFloat16, Int8 };
const char* toString(Precision p);  // "fp32", "bf16", "int8": the names in bundles, config and CLIs
bool parsePrecision(const std::string& text, Precision& out);

struct SemVer {
  int major = 0, minor = 0, patch = 0;
  static bool parse(const std::string& text, SemVer& out);
  std::string toString() const;
  bool operator<(const SemVer& o) const;
  bool operator==(const SemVer& o) const;
};

struct CodedConcept {  // DICOM code triplet (e.g. SCT 91723000 "Anatomical Structure")
  std::string scheme, value, meaning;
  bool empty() const { return value.empty(); }
};

struct LabelInfo {
  int value = 0;  // value written in output label maps
  std::string name;
  std::array<int, 3> color{128, 128, 128};  // recommended display colour, sRGB
  CodedConcept category, type;
  std::vector<int> sourceValues;  // label values in the training data merged into this one
  CodedConcept typeModifier;      // laterality (SCT 7771000 Left / 24028007 Right), DICOM CID 244
};

struct PreprocessingSpec {
  Vec3 targetSpacing{1, 1, 1};
  Normalization normalization = Normalization::ZScore;
  double clipLow = 0, clipHigh = 0, mean = 0, std = 1;  // CT only
  Interpolation imageInterpolation = Interpolation::Linear;
  bool cropNonzero = true;
  // preprocessing.crop_foreground: crop also to the subject's box (Preprocess.h), widened by the
  // margin in mm. The subject is where voxels exceed `fraction` of the image's 99th percentile
  // (MR, whose background is noise: foregroundBox) or `above`, a value in the image's own units
  // (CT in HU: the body against the air of the field of view, foregroundBoxAbove). Off when
  // neither is set.
  double cropForeground = 0;                  // fraction; 0: not this rule
  std::optional<double> cropForegroundAbove;  // above
  double cropForegroundMarginMm = 8;
  bool cropsForeground() const { return cropForeground > 0 || cropForegroundAbove.has_value(); }
};

// nnU-Net's PlainConvUNet, described by its plan. Acts as the network's options struct.
struct ArchitectureSpec {
  int inChannels = 1;
  int numClasses = 2;
  std::vector<int> features;                       // per stage
  std::vector<std::array<int, 3>> kernelSizes;     // per stage
  std::vector<std::array<int, 3>> strides;         // per stage; stage 0 is usually 1,1,1
  std::vector<int> convsPerStage;                  // encoder, per stage
  std::vector<int> convsPerStageDecoder;           // decoder, per stage except the deepest
  bool deepSupervision = false;
  // nnU-Net gives every conv a bias; before InstanceNorm it is redundant (the norm subtracts the
  // mean), so bundles may drop it: fewer parameters, same function.
  bool convBias = true;

  int stages() const { return int(features.size()); }
  // Throws Error(BadBundle) naming `where` and the key at fault.
  void validate(const std::string& where) const;
  // Student rule of DESIGN §6: features_i = max(minFeatures, features_i / divisor).
  ArchitectureSpec withWidthDivisor(int divisor, int minFeatures) const;
  int64_t parameterCount() const;
  // The nnU-Net default for n stages: min(32 * 2^i, 320) features, 3^3 kernels, stride 2 after
  // stage 0, two convs per stage.
  static ArchitectureSpec nnunetDefault(int stages, int numClasses, int inChannels = 1);
};

struct InferenceSpec {
  std::array<int64_t, 3> patchSize{128, 128, 128};
  double tileStep = 0.5;  // fraction of the patch between tile starts
  bool gaussian = true;
  std::vector<int> mirrorAxes;  // axes flipped for test-time augmentation (0..2); empty: off
  int batchSize = 1;
  Precision precision = Precision::Float32;
  // inference.int8_calibration (`segnode-distill calibrate`): for each convolution that reads
  // 8-bit input, in the order the network runs them (every one but the first and the head), the
  // largest |activation| of each input channel seen on the calibration images; channel c is
  // quantised symmetrically, q = round(127 * x / absmax_c). Empty: no calibration, no int8.
  struct Int8Calibration {
    std::vector<std::vector<double>> activationAbsmax;
    std::string images;  // what it was measured on, free text
  } int8;
};

// bundle.yaml `plausibility:` (issue 16, engine/Plausibility.h): what a result of this model
// must look like to be sent as it is. Written by `segnode-distill export` from the training label
// maps and the validation cases; a range of [0, 0] is not checked.
struct PlausibilitySpec {
  using Range = std::array<double, 2>;
  bool declared = false;
  Range labelledVolumeMl{0, 0};  // all foreground labels together
  double structuresPresent = 0;  // least share of the foreground labels present...
  double minStructureMl = 0;     // ...a label counting as present from this volume
  Range leftRightRatio{0, 0};    // left / right volume of each "left X" / "right X" pair present
  std::vector<std::pair<std::string, Range>> structureVolumeMl;  // per label name (CT organs)
  double minConnectedShare = 0;  // labelled voxels in their label's largest piece (Plausibility.h)
  double minConfidence = 0;      // mean top-class probability; below it: LOW CONFIDENCE
  // CT: the input's lowest value must be at most this. A CT in Hounsfield units holds air (around
  // the body, in the lungs and the bowel: about -1000 HU) far below any tissue (fat, the lowest,
  // about -100 HU); an MR or any picture of non-negative values does not, and a CT network finds
  // organs in it all the same (docs/models.md). Unset: not checked.
  std::optional<double> lowestInputAtMost;
  std::string source;            // how the ranges were derived, free text
};

// What is done to the labels after the network (engine/Segmenter.cpp, in every path that
// segments: node, CLI, evaluate). nnU-Net's "remove all but the largest component": each label
// listed keeps only its largest 6-connected piece, the rest becomes background (Components.h).
// A template lists the structures that are one piece in anatomy (the 13 FLARE22 organs), so a
// liver-like patch in the pelvis, which the synthetic training never showed, is not "liver".
struct PostprocessingSpec {
  std::vector<int> largestComponent;  // label values
};

struct BundleSpec {
  std::string name;
  SemVer version;
  std::string created;  // ISO 8601
  Modality modality = Modality::MR;
  std::string bodyPart;  // DICOM BodyPartExamined, e.g. BRAIN, ABDOMEN
  std::string description;
  std::vector<LabelInfo> labels;  // index = network output channel; labels[0] is background
  PreprocessingSpec preprocessing;
  ArchitectureSpec architecture;
  InferenceSpec inference;
  PlausibilitySpec plausibility;
  PostprocessingSpec postprocessing;
  nlohmann::ordered_json provenance = nlohmann::ordered_json::object();  // free-form: teacher, distillation, data, untrained flag
  nlohmann::ordered_json metrics = nlohmann::ordered_json::object();     // free-form: params, dice per label, cpu seconds
  std::string weightsFile = "weights.safetensors";
  std::string weightsSha256;
  std::filesystem::path directory;  // where bundle.yaml was read from

  std::string reference() const { return name + "@" + version.toString(); }
  std::filesystem::path weightsPath() const { return directory / weightsFile; }
  bool untrained() const;
};

// Reads and validates <dir>/bundle.yaml (not the weights). Errors name the file and the key.
BundleSpec loadBundleSpec(const std::filesystem::path& directory);
// A template is a bundle.yaml without the weights section (labels, plan, inference defaults),
// from which new bundles are made (etc/templates/).
BundleSpec loadBundleTemplate(const std::filesystem::path& yamlFile);
BundleSpec parseBundleFile(const std::filesystem::path& yamlFile, bool isTemplate);
void saveBundleSpec(const BundleSpec& spec, const std::filesystem::path& yamlFile);

const char* toString(Modality m);
const char* toString(Normalization n);

}  // namespace segnode::engine
