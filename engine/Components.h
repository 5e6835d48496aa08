#pragma once
// The 6-connected pieces of each label of a label map: how much of each label lies in its largest
// piece (the plausibility check's fragmentation, Plausibility.h) and nnU-Net's post-processing
// "remove all but the largest component" for the labels a bundle declares one piece in anatomy
// (BundleSpec::postprocessing). One pass with a flood fill per piece; a second fill clears a
// removed piece. Values as stored (uint8 or int16), no whole-volume copy.
#include <vector>

#include "engine/Volume.h"

namespace segnode::engine {

// A label map's values as stored when they are uint8 or int16 (what the segmenter writes and label
// maps hold), contiguous; any other type as an int16 copy. No whole-volume copy on the node's path.
torch::Tensor storedLabelValues(const torch::Tensor& t);
// f(v) with v the typed pointer (uint8_t* or int16_t*) to the values of storedLabelValues' result.
template <class F>
auto withLabelPointer(const torch::Tensor& values, F&& f) {
  return values.scalar_type() == torch::kByte ? f(values.data_ptr<uint8_t>()) : f(values.data_ptr<int16_t>());
}

struct PieceSummary {
  int64_t labelled = 0;   // non-zero voxels
  int64_t inLargest = 0;  // of those, in the largest piece of their own label
  int64_t removed = 0;    // set to 0 by keepLargestPieces
  // inLargest / labelled; 0 when nothing is labelled.
  double connectedShare() const { return labelled ? double(inLargest) / double(labelled) : 0; }
};

// Measures every label's pieces; changes nothing.
PieceSummary summarisePieces(const Volume& labels);

// Sets to 0 every piece of each label value in `values` but that label's largest (the first found
// on a tie). Returns what it measured before removing: the plausibility check compares the
// result's fragmentation before post-processing hid it.
PieceSummary keepLargestPieces(Volume& labels, const std::vector<int>& values);

}  // namespace segnode::engine
