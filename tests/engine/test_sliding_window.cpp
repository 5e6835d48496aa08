// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>


#include "engine/Predictor.h"
#include "engine/SlidingWindow.h"

using namespace segnode::engine;

TEST_CASE("tile starts follow nnU-Net's rule", "[window]") {
  CHECK((tileStarts(128, 128, 0.5) == std::vector<int64_t>{0}));
  CHECK((tileStarts(177, 128, 0.5) == std::vector<int64_t>{0, 49}));
  CHECK((tileStarts(215, 128, 0.5) == std::vector<int64_t>{0, 44, 87}));
  CHECK((tileStarts(300, 128, 0.5) == std::vector<int64_t>{0, 57, 115, 172}));
  CHECK((tileStarts(256, 128, 1.0) == std::vector<int64_t>{0, 128}));
  CHECK(tileOrigins({181, 215, 177}, {128, 128, 128}, 0.5).size() == 12);
}

TEST_CASE("Gaussian importance map: peak 1 at the centre, sigma = tile/8, no zeros", "[window]") {
  Size3 tile{32, 16, 8};
  auto g = gaussianImportance(tile);
  auto at = [&](int64_t x, int64_t y, int64_t z) { return g[size_t((z * tile[1] + y) * tile[0] + x)]; };
  CHECK(at(16, 8, 4) == 1.0f);
  for (float v : g) {
    CHECK(v > 0);
    CHECK(v <= 1);
  }
  // One sigma (tile/8 = 4 voxels) from the centre along x: exp(-1/2).
  CHECK(at(20, 8, 4) == Approx(std::exp(-0.5)).epsilon(1e-5));
  CHECK(at(16, 10, 4) == Approx(std::exp(-0.5)).epsilon(1e-5));
  CHECK(at(12, 8, 4) == at(20, 8, 4));  // symmetric
}

TEST_CASE("an input of exactly one tile gives exactly one forward pass", "[window]") {
  torch::manual_seed(3);
  auto conv = torch::nn::Conv3d(torch::nn::Conv3dOptions(1, 4, 3).padding(1));
  int calls = 0;
  NetworkFn net = [&](const torch::Tensor& x) {
    ++calls;
    return conv->forward(x);
  };
  torch::NoGradGuard guard;
  torch::Tensor image = torch::randn({16, 24, 20});
  WindowOptions o;
  o.tile = {20, 24, 16};
  torch::Tensor logits = slidingWindowLogits(net, 4, image, o);
  CHECK(calls == 1);
  torch::Tensor direct = conv->forward(image.view({1, 1, 16, 24, 20}))[0];
  CHECK(torch::allclose(logits, direct, 1e-5, 1e-6));
  CHECK(torch::equal(slidingWindowClasses(net, 4, image, o), direct.argmax(0).to(torch::kByte)));
}

TEST_CASE("streamed argmax equals argmax of the full logits, with padding, batching and mirroring", "[window]") {
  torch::manual_seed(5);
  auto conv = torch::nn::Conv3d(torch::nn::Conv3dOptions(1, 3, 3).padding(1));
  NetworkFn net = [&](const torch::Tensor& x) { return conv->forward(x); };
  torch::NoGradGuard guard;
  torch::Tensor image = torch::randn({45, 30, 9});  // z long (several windows), x smaller than a tile
  WindowOptions o;
  o.tile = {16, 16, 16};
  o.batchSize = 3;
  for (bool mirror : {false, true}) {
    o.mirrorAxes = mirror ? std::vector<int>{0, 2} : std::vector<int>{};
    torch::Tensor logits = slidingWindowLogits(net, 3, image, o);
    REQUIRE(logits.sizes() == torch::IntArrayRef({3, 45, 30, 9}));
    CHECK(torch::equal(slidingWindowClasses(net, 3, image, o), logits.argmax(0).to(torch::kByte)));
  }
  // A translation-equivariant network over overlapping tiles averages to the direct answer away
  // from tile borders, whatever the weights: a check of the weighting and placement.
  o.mirrorAxes = {};
  torch::Tensor big = torch::randn({40, 40, 40});
  torch::Tensor logits = slidingWindowLogits(net, 3, big, o);
  torch::Tensor direct = conv->forward(big.view({1, 1, 40, 40, 40}))[0];
  // Away from every tile's own border the two agree.
  CHECK(torch::allclose(logits.slice(1, 18, 22).slice(2, 18, 22).slice(3, 18, 22),
                        direct.slice(1, 18, 22).slice(2, 18, 22).slice(3, 18, 22), 1e-4, 1e-5));
}
