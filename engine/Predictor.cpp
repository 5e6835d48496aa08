#include "engine/Predictor.h"

#include <torch/torch.h>

#include "engine/Confidence.h"
#include "engine/SlidingWindow.h"

namespace segnode::engine {
namespace {

Size3 paddedSize(const Size3& size, const Size3& tile) {
  return {std::max(size[0], tile[0]), std::max(size[1], tile[1]), std::max(size[2], tile[2])};
}

// Test-time augmentation: run the network on every mirrored copy and average back.
torch::Tensor runMirrored(const NetworkFn& net, const torch::Tensor& batch, const std::vector<int>& axes) {
  torch::Tensor sum = net(batch);
  int combos = 1 << axes.size();
  for (int mask = 1; mask < combos; ++mask) {
    std::vector<int64_t> dims;
    for (size_t i = 0; i < axes.size(); ++i)
      if (mask & (1 << i)) dims.push_back(4 - axes[i]);  // axis x is the last tensor dim
    sum.add_(net(batch.flip(dims)).flip(dims));
  }
  if (combos > 1) sum.div_(double(combos));
  return sum;
}

// Weighted logits are accumulated in a window of `depth` z-slices that slides along z: tiles come
// in z-major order, so once a tile starts at z every slice below z is final and is handed to
// `finalize` (normalised) before the window moves on. With depth = tile depth the accumulator
// costs classes x tile_z x y x x floats instead of the whole volume.
using FinalizeFn = std::function<void(int64_t z0, const torch::Tensor& logits)>;

// Logits of one tile as a [C, z, y, x] view of channels-last memory (classes fastest), the layout
// the oneDNN backend produces; other backends' tiles are transposed once here.
torch::Tensor channelsLast(const torch::Tensor& logits) {
  if (logits.stride(0) == 1) return logits;
  return logits.permute({1, 2, 3, 0}).contiguous().permute({3, 0, 1, 2});
}

void accumulateTiles(const NetworkFn& net, int64_t numClasses, const torch::Tensor& input, const WindowOptions& o,
                     int64_t depth, const FinalizeFn& finalize) {
  const Size3 size{input.size(2), input.size(1), input.size(0)};
  const auto origins = tileOrigins(size, o.tile, o.step);
  torch::Tensor weight = o.gaussian ? torch::tensor(gaussianImportance(o.tile)).view({o.tile[2], o.tile[1], o.tile[0]})
                                    : torch::ones({o.tile[2], o.tile[1], o.tile[0]});
  // Channels-last like the tiles: accumulating is then one streaming pass per tile.
  torch::Tensor acc = torch::zeros({depth, size[1], size[0], numClasses}).permute({3, 0, 1, 2});
  torch::Tensor weightSum = torch::zeros({depth, size[1], size[0]});
  int64_t base = 0;  // z of the window's first slice

  auto flush = [&](int64_t count) {  // finalize the first `count` slices of the window
    if (count <= 0) return;
    auto slab = acc.slice(1, 0, count);
    slab.div_(weightSum.slice(0, 0, count));
    finalize(base, slab);
  };
  auto slide = [&](int64_t newBase) {
    int64_t shift = newBase - base, keep = depth - shift;
    flush(std::min(shift, depth));
    // Slice by slice, front to back: each source lies behind its destination, so nothing is
    // overwritten before it is read, and no copy of the window (hundreds of MB) is needed.
    for (int64_t k = 0; k < keep; ++k) {
      acc.select(1, k).copy_(acc.select(1, k + shift));
      weightSum.select(0, k).copy_(weightSum.select(0, k + shift));
    }
    acc.slice(1, std::max<int64_t>(keep, 0), depth).zero_();
    weightSum.slice(0, std::max<int64_t>(keep, 0), depth).zero_();
    base = newBase;
  };

  const int64_t total = int64_t(origins.size());
  const int64_t batch = std::max(1, o.batchSize);
  torch::Tensor in = torch::zeros({batch, 1, o.tile[2], o.tile[1], o.tile[0]});
  for (int64_t first = 0; first < total; first += batch) {
    int64_t count = std::min(batch, total - first);
    if (count < batch) in.zero_();  // the last batch is padded: the network always sees one shape
    for (int64_t b = 0; b < count; ++b) {
      const auto& org = origins[size_t(first + b)];
      in[b][0].copy_(input.slice(0, org[2], org[2] + o.tile[2]).slice(1, org[1], org[1] + o.tile[1]).slice(2, org[0], org[0] + o.tile[0]));
    }
    torch::Tensor logits = runMirrored(net, in, o.mirrorAxes);
    for (int64_t b = 0; b < count; ++b) {
      const auto& org = origins[size_t(first + b)];
      if (org[2] + o.tile[2] > base + depth) slide(org[2]);
      int64_t z = org[2] - base;
      acc.slice(1, z, z + o.tile[2]).slice(2, org[1], org[1] + o.tile[1]).slice(3, org[0], org[0] + o.tile[0])
          .addcmul_(channelsLast(logits[b]), weight);
      weightSum.slice(0, z, z + o.tile[2]).slice(1, org[1], org[1] + o.tile[1]).slice(2, org[0], org[0] + o.tile[0]).add_(weight);
    }
    if (o.progress) o.progress(first + count, total);
  }
  flush(std::min(depth, size[2] - base));
}

// Zero-pads an image smaller than a tile (centred); `lo` receives the offset of the original.
torch::Tensor padToTile(const torch::Tensor& image, const Size3& tile, Size3& lo) {
  const Size3 size{image.size(2), image.size(1), image.size(0)};
  const Size3 padded = paddedSize(size, tile);
  for (int a = 0; a < 3; ++a) lo[size_t(a)] = (padded[size_t(a)] - size[size_t(a)]) / 2;
  if (padded == size) return image;
  torch::Tensor out = torch::zeros({padded[2], padded[1], padded[0]}, image.options());
  out.slice(0, lo[2], lo[2] + size[2]).slice(1, lo[1], lo[1] + size[1]).slice(2, lo[0], lo[0] + size[0]).copy_(image);
  return out;
}

torch::Tensor unpad(const torch::Tensor& t, const Size3& lo, const torch::Tensor& image) {
  int64_t d = t.dim() - 3;
  return t.slice(d, lo[2], lo[2] + image.size(0))
      .slice(d + 1, lo[1], lo[1] + image.size(1))
      .slice(d + 2, lo[0], lo[0] + image.size(2))
      .contiguous();
}

}  // namespace

int64_t countTiles(const Size3& imageSize, const WindowOptions& o) {
  return int64_t(tileOrigins(paddedSize(imageSize, o.tile), o.tile, o.step).size());
}

torch::Tensor slidingWindowLogits(const NetworkFn& net, int64_t numClasses, const torch::Tensor& image,
                                  const WindowOptions& o) {
  Size3 lo{};
  torch::Tensor input = padToTile(image, o.tile, lo);
  torch::Tensor out = torch::empty({numClasses, input.size(0), input.size(1), input.size(2)});
  accumulateTiles(net, numClasses, input, o, input.size(0), [&](int64_t z0, const torch::Tensor& slab) {
    out.slice(1, z0, z0 + slab.size(1)).copy_(slab);
    if (o.confidence) o.confidence->add(slab);
  });
  return unpad(out, lo, image);
}

torch::Tensor slidingWindowClasses(const NetworkFn& net, int64_t numClasses, const torch::Tensor& image,
                                   const WindowOptions& o) {
  Size3 lo{};
  torch::Tensor input = padToTile(image, o.tile, lo);
  torch::Tensor out = torch::empty({input.size(0), input.size(1), input.size(2)}, torch::kByte);
  accumulateTiles(net, numClasses, input, o, std::min(input.size(0), o.tile[2]), [&](int64_t z0, const torch::Tensor& slab) {
    out.slice(0, z0, z0 + slab.size(1)).copy_(slab.argmax(0));
    if (o.confidence) o.confidence->add(slab);
  });
  return unpad(out, lo, image);
}

}  // namespace segnode::engine
