#pragma once
// nnU-Net's preprocessing, recorded so that it can be undone in exact reverse order:
//   reorient to canonical axes -> crop to the non-zero box (and, where the bundle asks, to the
//   foreground box) -> resample to the bundle spacing
//   -> normalise (MR z-score, CT clip + dataset statistics).
// The inverse maps network logits back to class indices on the input's own grid.
#include <torch/types.h>

#include "engine/BundleSpec.h"
#include "engine/Volume.h"

namespace segnode::engine {

struct CropBox {
  Size3 begin{0, 0, 0}, end{0, 0, 0};  // (x, y, z), end exclusive
  Size3 size() const { return {end[0] - begin[0], end[1] - begin[1], end[2] - begin[2]}; }
};

// Bounding box of voxels != 0 of a [z, y, x] tensor; the whole grid when nothing is non-zero.
CropBox nonzeroBox(const torch::Tensor& image);

// The subject inside an MR field of view whose background is noise, not zero (issue 14): a
// slice along each axis belongs to the subject when more than 1 % of its voxels exceed
// `fraction` of the image's 99th percentile; the box spans those slices, widened by `marginVoxels`
// per axis (x, y, z) and clamped to the grid. Scattered bright noise voxels never fill 1 % of a
// slice, so they do not stretch the box. The whole grid when no slice qualifies.
CropBox foregroundBox(const torch::Tensor& image, double fraction, const Size3& marginVoxels);

// The same box with the threshold given in the image's own units: a CT's body, whose voxels lie
// above `threshold` (-500 HU) where the air of the field of view lies below (the lungs and the
// bowel gas are inside the box anyway). A full 500 mm field of view holds a body of about
// 350 x 250 mm: the box is what the network must see.
CropBox foregroundBoxAbove(const torch::Tensor& image, double threshold, const Size3& marginVoxels);

struct PreprocessRecord {
  Geometry input;             // the grid labels must come back to
  Reorientation reorientation;
  Size3 canonicalSize{};      // after reorientation
  CropBox crop;               // in the canonical grid
  bool resampled = false;
  Size3 networkSize{};        // grid the network sees
  Vec3 step{1, 1, 1};         // network index * step = cropped canonical index
};

struct Preprocessed {
  torch::Tensor image;  // [z, y, x] float32, normalised
  PreprocessRecord record;
};

Preprocessed preprocess(const Volume& input, const PreprocessingSpec& spec);

// In-place normalisation of a float32 tensor as the bundle says.
void normalize(torch::Tensor& image, const PreprocessingSpec& spec);

// logits [C, z, y, x] on the network grid -> uint8 class indices [z, y, x] on the input grid.
torch::Tensor classesOnInputGrid(const torch::Tensor& logits, const PreprocessRecord& record);

// Class indices already on the cropped canonical grid (no resampling was needed) -> input grid.
torch::Tensor placeOnInputGrid(const torch::Tensor& cropClasses, const PreprocessRecord& record);

}  // namespace segnode::engine
