#pragma once
// Students initialised from their teacher by structured width pruning: every layer of the student
// keeps the teacher's most important output channels, and every later layer keeps the matching
// input channels, so that the student starts as a thinned copy of what the teacher has learnt
// instead of from noise ("self-configuring compression": the family is derived from the teacher).
//
// Importance of a channel:
//   conv -> InstanceNorm -> LeakyReLU: |gamma| of the norm. InstanceNorm removes the conv filter's
//     scale, so the filter's L1 norm says nothing; gamma is what the channel passes on, and a channel
//     with gamma ~ 0 is a constant that the next InstanceNorm subtracts anyway (network slimming).
//   transposed-conv upsampling (no norm after it): L1 norm of the channel's filter.
// Index sets are carried through the skip connections, the concatenations (upsampled channels
// first, then the skip's), the transposed convolutions and every deep-supervision head. The kept
// indices stay in ascending order, so pruning to the teacher's own width reproduces it exactly.
// Because a student's channels are a subset of its teacher's, its decoder features can be
// distilled against the teacher's same channels without a learnt adapter.
#include "engine/nn/PlainConvUNet.h"

namespace segnode::training {

// A student of `studentArch` (same depth, kernels and strides as the teacher; features at most the
// teacher's) whose weights are the teacher's selected channels. Throws InvalidArgument otherwise.
engine::PlainConvUNet pruneFromTeacher(engine::PlainConvUNet& teacher, const engine::ArchitectureSpec& studentArch);

// For feature distillation: the teacher channels that each decoder stage of the student pruned to
// `studentArch` kept (int64, ascending), full resolution first as in forwardWithFeatures. The
// selection depends on the teacher's weights only, so a resumed run recomputes the same sets.
std::vector<torch::Tensor> decoderChannels(engine::PlainConvUNet& teacher, const engine::ArchitectureSpec& studentArch);

}  // namespace segnode::training
