#pragma once
// Sliding-window prediction over a whole (preprocessed) image with any network callable.
#include <functional>

#include <torch/types.h>

#include "engine/Geometry.h"

namespace segnode::engine {
class ConfidenceAccumulator;
}

namespace segnode::engine {

using ProgressFn = std::function<void(int64_t done, int64_t total)>;
using NetworkFn = std::function<torch::Tensor(const torch::Tensor&)>;  // [N,1,z,y,x] -> [N,C,z,y,x]

struct WindowOptions {
  Size3 tile{128, 128, 128};  // (x, y, z)
  double step = 0.5;
  bool gaussian = true;
  std::vector<int> mirrorAxes;  // (x, y, z) axes; every subset is averaged (test-time augmentation)
  int batchSize = 1;
  ProgressFn progress;
  ConfidenceAccumulator* confidence = nullptr;  // fed the averaged logits slab by slab (Confidence.h)
};

// image: [z, y, x] float32. Returns the importance-weighted average logits [C, z, y, x] float32
// on the image's grid (inputs smaller than a tile are zero-padded, and the padding removed).
// Tiles are batched `batchSize` at a time; the last batch is padded so the network always sees
// one input shape.
torch::Tensor slidingWindowLogits(const NetworkFn& net, int64_t numClasses, const torch::Tensor& image,
                                  const WindowOptions& options);

// The same weighted average, reduced to uint8 argmax class indices [z, y, x] as the window slides:
// only about one tile's depth of logits is held at a time (see Predictor.cpp).
torch::Tensor slidingWindowClasses(const NetworkFn& net, int64_t numClasses, const torch::Tensor& image,
                                   const WindowOptions& options);

int64_t countTiles(const Size3& imageSize, const WindowOptions& options);

}  // namespace segnode::engine
