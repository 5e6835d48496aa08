#pragma once
// `segnode-distill plan`: dataset fingerprint -> the plan that the teacher and all its students
// share (target spacing, patch size, stages, features, batch size), by nnU-Net's rules
// (ExperimentPlanner of nnU-Net v2, 3d_fullres). No LibTorch here.
//
// All per-axis triples are (x, y, z) in the canonical orientation, as in bundle.yaml.
#include <array>
#include <optional>
#include <string>
#include <vector>

#include "engine/BundleSpec.h"

namespace segnode::training {

using Int3 = std::array<int64_t, 3>;
using Real3 = std::array<double, 3>;

struct Fingerprint {
  std::vector<Real3> spacings;       // per case
  std::vector<Int3> shapesAfterCrop; // per case, voxels of the non-zero box
  int inputChannels = 1;
  int numLabels = 2;                 // including background
  // CT only: foreground intensity statistics (nnU-Net's CTNormalization).
  double ctPercentile005 = 0, ctPercentile995 = 0, ctMean = 0, ctStd = 1;
};

struct PlanOptions {
  double gpuMemoryTargetGb = 8;  // nnU-Net's gpu_memory_target_in_gb
  int minFeatureMapEdge = 4;     // bottleneck edge length
  int baseFeatures = 32, maxFeatures = 320;
  // nnU-Net's overwrite_target_spacing: a coarser grid than the data's (CPU speed; the 3 mm CT plans).
  std::optional<Real3> targetSpacing;
};

struct Plan {
  Real3 spacing{1, 1, 1};
  Int3 medianShape{0, 0, 0};  // after resampling to `spacing`
  Int3 patchSize{0, 0, 0};
  std::vector<std::array<int, 3>> strides;      // per stage (stage 0: 1,1,1)
  std::vector<std::array<int, 3>> kernelSizes;  // per stage
  std::vector<int> features;
  int batchSize = 2;
  double vramEstimate = 0, vramReference = 0;   // nnU-Net's feature-map-voxel estimate
  bool hasCt = false;                           // CT normalisation statistics (from the fingerprint)
  double ctClipLow = 0, ctClipHigh = 0, ctMean = 0, ctStd = 1;

  int stages() const { return int(features.size()); }
  // Architecture for `numClasses` outputs (2 convs per stage, deep supervision, no conv bias).
  engine::ArchitectureSpec architecture(int numClasses, int inChannels) const;
};

// nnU-Net's network_topology.get_pool_and_conv_props: how often each axis can be halved.
struct Topology {
  Int3 poolsPerAxis{0, 0, 0};
  std::vector<std::array<int, 3>> strides, kernelSizes;
  Int3 patchSize{0, 0, 0};  // padded to a multiple of 2^pools
  Int3 divisibleBy{1, 1, 1};
};
Topology poolAndConvProps(const Real3& spacing, const Int3& patchSize, int minFeatureMapEdge);

// Sum of conv/transposed-conv/head output voxels x channels for batch 1 (nnU-Net's
// compute_conv_feature_map_size of PlainConvUNet without deep supervision).
double featureMapVoxels(const Int3& patch, const std::vector<std::array<int, 3>>& strides,
                        const std::vector<int>& features, int inChannels, int numLabels);

Real3 targetSpacing(const Fingerprint& fp);
Plan makePlan(const Fingerprint& fp, const PlanOptions& options = {});

// YAML text of a plan (what `plan` writes and `train`/`distill` read back).
std::string planToYaml(const Plan& plan, const Fingerprint& fp);
Plan planFromYaml(const std::string& path);

}  // namespace segnode::training
