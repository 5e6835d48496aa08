#pragma once
// Training losses: nnU-Net's Dice + cross-entropy with deep supervision, and the two
// distillation terms of DESIGN §6 (logit KD and gradient/boundary KD). Tensors are
// [B, C, z, y, x] logits and [B, z, y, x] int64 targets; everything is computed in float32.
#include <torch/types.h>

#include <vector>

namespace segnode::training {

// Soft Dice over the foreground classes (batch Dice: sums over the whole batch, as nnU-Net's
// batch_dice), smooth 1e-5; returns 1 - mean Dice.
torch::Tensor softDiceLoss(const torch::Tensor& logits, const torch::Tensor& target);
torch::Tensor diceCeLoss(const torch::Tensor& logits, const torch::Tensor& target);

// nnU-Net's deep supervision: heads full resolution first, weights 1/2^i with the coarsest
// dropped, normalised; targets are subsampled to each head's grid (nearest).
std::vector<double> deepSupervisionWeights(size_t heads);
torch::Tensor deepSupervisionLoss(const std::vector<torch::Tensor>& heads, const torch::Tensor& target);

// Voxel-wise KL(teacher || student) on temperature-softened softmax, summed over classes,
// averaged over voxels, scaled by T^2 (Hinton et al.) so gradients keep their size across T.
torch::Tensor klDistillationLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherLogits,
                                 double temperature);

// The same KL, each voxel weighted by the inverse frequency in the batch of the teacher's class at
// that voxel (weights mean 1): every class the teacher sees counts as much as any other, so white
// matter and background no longer carry almost all of it.
torch::Tensor balancedKlDistillationLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherLogits,
                                         double temperature);

// Feature distillation of a pruned student (training/Prune.h decoderChannels): per decoder stage,
// the mean squared difference between the student's features and the teacher's same channels,
// averaged over the stages. Both sides are InstanceNorm + LeakyReLU outputs, so they share a scale
// and need no adapter (FitNets' regressor exists because a student's channels are not a subset).
torch::Tensor featureDistillationLoss(const std::vector<torch::Tensor>& studentFeatures,
                                      const std::vector<torch::Tensor>& teacherFeatures,
                                      const std::vector<torch::Tensor>& channels);

enum class EdgeOperator { Sobel, Prewitt };
// Per class, the 3D gradient magnitude of the softmax map (separable Sobel or Prewitt kernels):
// [B, C, z, y, x] -> [B, C, z, y, x].
torch::Tensor edgeMagnitude(const torch::Tensor& probabilities, EdgeOperator op);
// Mean of w * (|grad p_student| - |grad p_teacher|)^2 with w = 1 + edgeWeight * |grad p_teacher|
// normalised to [0, 1] per sample: boundaries of the teacher count more.
torch::Tensor gradientDistillationLoss(const torch::Tensor& studentLogits, const torch::Tensor& teacherLogits,
                                       EdgeOperator op, double edgeWeight);

}  // namespace segnode::training
