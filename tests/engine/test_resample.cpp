// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>


#include "engine/Preprocess.h"
#include "engine/Resample.h"

using namespace segnode::engine;

TEST_CASE("resampling to the same grid is the identity", "[resample]") {
  torch::Tensor x = torch::rand({6, 7, 8});
  for (auto interp : {Interpolation::Nearest, Interpolation::Linear, Interpolation::Cubic})
    CHECK(torch::equal(resample(x, {8, 7, 6}, {1, 1, 1}, interp), x));
  torch::Tensor labels = torch::randint(0, 4, {6, 7, 8}, torch::kByte);
  CHECK(torch::equal(resampleLabels(labels, {8, 7, 6}, {1, 1, 1}), labels));
}

TEST_CASE("linear and cubic resampling reproduce a linear ramp exactly", "[resample]") {
  // f(x, y, z) = 2x - 3y + 0.5z + 1 on a 9x8x7 grid, resampled to half the spacing along x and
  // twice along z: the samples of a linear function are that function at the new positions.
  auto f = [](double x, double y, double z) { return 2 * x - 3 * y + 0.5 * z + 1; };
  torch::Tensor in = torch::empty({7, 8, 9});
  for (int z = 0; z < 7; ++z)
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 9; ++x) in[z][y][x] = f(x, y, z);
  Size3 out{17, 8, 4};
  Vec3 step{0.5, 1, 2};
  for (auto interp : {Interpolation::Linear, Interpolation::Cubic}) {
    torch::Tensor r = resample(in, out, step, interp);
    REQUIRE(r.sizes() == torch::IntArrayRef({4, 8, 17}));
    for (int z = 0; z < 4; ++z)
      for (int y = 0; y < 8; y += 3)
        for (int x = 2; x < 15; ++x)  // interior: cubic clamps its outer taps at the border
          CHECK(r[z][y][x].item<double>() == Approx(f(x * 0.5, y, z * 2)).margin(1e-4));
  }
}

TEST_CASE("resampledSize follows nnU-Net's rounding", "[resample]") {
  CHECK((resampledSize({181, 217, 181}, {1, 1, 1}, {1, 1, 1}) == Size3{181, 217, 181}));
  CHECK((resampledSize({122, 101, 112}, {3, 3, 3}, {1.5, 1.5, 1.5}) == Size3{244, 202, 224}));
  CHECK((resampledSize({10, 10, 3}, {1, 1, 5}, {2, 2, 2}) == Size3{5, 5, 8}));
}

TEST_CASE("label resampling keeps labels and argmax resampling matches it on one-hot maps", "[resample]") {
  torch::Tensor labels = torch::zeros({10, 10, 10}, torch::kByte);
  labels.slice(0, 2, 8).slice(1, 2, 8).slice(2, 2, 8).fill_(7);
  labels.slice(0, 4, 6).slice(1, 4, 6).slice(2, 4, 6).fill_(3);
  torch::Tensor up = resampleLabels(labels, {19, 19, 19}, {0.5, 0.5, 0.5});
  auto values = std::get<0>(at::_unique(up));
  CHECK(values.numel() == 3);  // 0, 3, 7 only: nothing invented between neighbours
  // On the original sample points (every second voxel) the labels are unchanged.
  CHECK(torch::equal(up.slice(0, 0, 19, 2).slice(1, 0, 19, 2).slice(2, 0, 19, 2), labels));
  // The same through per-class maps (one-hot of indices 0, 1, 2).
  torch::Tensor idx = torch::zeros_like(labels);
  idx.masked_fill_(labels == 3, 1);  // same order as the sorted label values, so ties break alike
  idx.masked_fill_(labels == 7, 2);
  torch::Tensor onehot = torch::stack({(idx == 0).to(torch::kFloat), (idx == 1).to(torch::kFloat), (idx == 2).to(torch::kFloat)});
  torch::Tensor viaMaps = resampleArgmax(onehot, {19, 19, 19}, {0.5, 0.5, 0.5});
  torch::Tensor expected = torch::zeros_like(up);
  expected.masked_fill_(up == 3, 1);
  expected.masked_fill_(up == 7, 2);
  CHECK(torch::equal(viaMaps, expected));
}

TEST_CASE("argmax resampling equals per-class resampling then argmax, inside regions and on their boundaries", "[resample]") {
  torch::manual_seed(7);
  // Noise (almost every voxel a boundary) and smooth regions (mostly the shortcut inside them).
  torch::Tensor noise = torch::randn({5, 13, 11, 9});  // [C, z, y, x]
  torch::Tensor regions = torch::zeros({4, 20, 18, 16});
  regions[1].slice(0, 3, 15).slice(1, 4, 12).slice(2, 2, 10).fill_(3);
  regions[2].slice(0, 8, 20).slice(1, 0, 9).fill_(2);
  regions[3].slice(2, 11, 16).fill_(1);
  regions += 0.3 * torch::randn(regions.sizes());
  for (const torch::Tensor& maps : {noise, regions})
    for (const Vec3& step : {Vec3{0.37, 0.61, 0.29}, Vec3{1.7, 1.3, 2.1}, Vec3{1, 1, 1}, Vec3{0.94, 0.94, 1.2}}) {
      const Size3 out{int64_t(double(maps.size(3)) / step[0]), int64_t(double(maps.size(2)) / step[1]),
                      int64_t(double(maps.size(1)) / step[2])};
      std::vector<torch::Tensor> whole;
      for (int64_t c = 0; c < maps.size(0); ++c) whole.push_back(resample(maps[c], out, step, Interpolation::Linear));
      torch::Tensor expected = torch::stack(whole).argmax(0).to(torch::kByte);
      INFO("classes " << maps.size(0) << ", step " << step[0] << " " << step[1] << " " << step[2]);
      CHECK(torch::equal(resampleArgmax(maps, out, step), expected));
    }
}

TEST_CASE("preprocessing crops, normalises and is undone onto the input grid", "[resample][preprocess]") {
  Volume v;
  v.geometry.size = {20, 16, 12};
  v.geometry.spacing = {1, 1, 2};
  v.geometry.direction = {{{-1, 0, 0}, {0, 0, 1}, {0, -1, 0}}};  // a coronal, flipped grid
  v.data = torch::zeros({12, 16, 20});
  v.data.slice(0, 3, 9).slice(1, 4, 12).slice(2, 5, 15) = torch::rand({6, 8, 10}) + 1;
  PreprocessingSpec spec;
  spec.targetSpacing = {1, 1, 1};
  Preprocessed p = preprocess(v, spec);
  CHECK(p.record.resampled);
  CHECK(p.image.mean().item<double>() == Approx(0).margin(1e-5));
  CHECK(p.image.std(false).item<double>() == Approx(1).margin(1e-4));
  // Two "classes": inside the non-zero box or not. Undoing must put class 1 exactly on the box.
  torch::Tensor logits = torch::stack({torch::zeros_like(p.image), torch::ones_like(p.image)});
  torch::Tensor back = classesOnInputGrid(logits, p.record);
  REQUIRE(back.sizes() == v.data.sizes());
  CHECK(torch::equal(back.to(torch::kBool), v.data.ne(0)));
  // The caller's voxels are untouched.
  CHECK(v.data.min().item<float>() == 0);
}

TEST_CASE("the foreground box finds the subject in a noisy field of view and ignores stray bright voxels", "[preprocess]") {
  torch::manual_seed(3);
  torch::Tensor image = torch::rand({40, 50, 60}) * 20;               // [z, y, x] background noise
  image.slice(0, 10, 30).slice(1, 5, 45).slice(2, 20, 50) += 500;    // the subject
  image.index_put_({2, 2, 2}, 900.0);                                 // a few stray bright voxels
  image.index_put_({38, 48, 58}, 900.0);
  CropBox box = foregroundBox(image, 0.1, {2, 2, 2});
  CHECK(box.begin == Size3{18, 3, 8});
  CHECK(box.end == Size3{52, 47, 32});
  CropBox none = foregroundBox(torch::zeros({4, 5, 6}), 0.1, {1, 1, 1});
  CHECK(none.end == Size3{6, 5, 4});  // nothing bright: the whole grid
  // Through preprocessing: the network sees the box, labels come back on the whole grid.
  Volume v;
  v.geometry.size = {60, 50, 40};
  v.geometry.spacing = {1, 1, 1};
  v.data = image;
  PreprocessingSpec spec;
  spec.cropForeground = 0.1;
  spec.cropForegroundMarginMm = 2;
  Preprocessed p = preprocess(v, spec);
  CHECK(p.record.networkSize == Size3{34, 44, 24});
  torch::Tensor logits = torch::stack({torch::zeros_like(p.image), torch::ones_like(p.image)});
  torch::Tensor back = classesOnInputGrid(logits, p.record);
  REQUIRE(back.sizes() == image.sizes());
  CHECK(back.sum().item<int64_t>() == 34 * 44 * 24);  // class 1 exactly on the box, 0 outside
}

TEST_CASE("a CT's body box lies above -500 HU: air around it is cut, air inside it is kept", "[preprocess]") {
  torch::manual_seed(5);
  torch::Tensor image = torch::randn({30, 60, 80}) * 15 - 1000;      // [z, y, x] air of the field of view
  image.slice(1, 10, 50).slice(2, 15, 65) += 1040;                    // the body, every slice
  image.slice(1, 20, 30).slice(2, 25, 35).fill_(-990);                // gas inside it stays in the box
  image.index_put_({5, 2, 2}, 1200.0);                                // a stray bright voxel in the air
  CropBox box = foregroundBoxAbove(image, -500, {3, 3, 3});
  CHECK(box.begin == Size3{12, 7, 0});
  CHECK(box.end == Size3{68, 53, 30});
  // Through preprocessing with a CT bundle's spec: 1 mm voxels, margin 3 mm.
  Volume v;
  v.geometry.size = {80, 60, 30};
  v.geometry.spacing = {1, 1, 1};
  v.data = image;
  PreprocessingSpec spec;
  spec.normalization = Normalization::CT;
  spec.clipLow = -200, spec.clipHigh = 300, spec.mean = 40, spec.std = 50;
  spec.cropNonzero = false;
  spec.cropForegroundAbove = -500;
  spec.cropForegroundMarginMm = 3;
  Preprocessed p = preprocess(v, spec);
  CHECK(p.record.networkSize == Size3{56, 46, 30});
  torch::Tensor logits = torch::stack({torch::zeros_like(p.image), torch::ones_like(p.image)});
  CHECK(classesOnInputGrid(logits, p.record).sum().item<int64_t>() == 56 * 46 * 30);
}
