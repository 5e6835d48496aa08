// LibTorch pulls in glog, whose CHECK macro must not shadow Catch's: torch first.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <ATen/Parallel.h>

#include <atomic>
#include <thread>

#include "TestSupport.h"
#include "engine/TinyBundle.h"
#include "engine/Model.h"
#include "engine/Segmenter.h"
#include "engine/TensorCache.h"
#include "engine/Safetensors.h"
#include "engine/nn/PlainConvUNet.h"
#include "engine/nn/ScriptedUNet.h"

using namespace segnode::engine;
using segnode::test::TempDir;

TEST_CASE("PlainConvUNet has the nnU-Net default size and its analytic parameter count", "[network]") {
  // nnU-Net 3d_fullres default for 33 classes: 6 stages, 32..320 features.
  ArchitectureSpec teacher = ArchitectureSpec::nnunetDefault(6, 33);
  CHECK((teacher.features == std::vector<int>{32, 64, 128, 256, 320, 320}));
  PlainConvUNet net(teacher);
  CHECK(net->parameterCount() == teacher.parameterCount());
  ArchitectureSpec student = teacher.withWidthDivisor(4, 4);
  CHECK((student.features == std::vector<int>{8, 16, 32, 64, 80, 80}));
  CHECK(PlainConvUNet(student)->parameterCount() == student.parameterCount());
  // Convolution weights shrink by exactly 1/16; norms, the 1-channel input conv and the heads by
  // only 1/4, so the 1/4 student keeps a little over 1/16: 93.7 % fewer parameters (paper: 94 %).
  teacher.convBias = student.convBias = false;
  CHECK(PlainConvUNet(teacher)->parameterCount() == teacher.parameterCount());
  double kept = double(student.parameterCount()) / double(teacher.parameterCount());
  CHECK(kept > 0.0625);
  CHECK(kept < 0.0630);
}

TEST_CASE("deep supervision gives one output per decoder stage, full resolution first", "[network]") {
  ArchitectureSpec a = segnode::test::tinySpec(3).architecture;
  a.deepSupervision = true;
  PlainConvUNet net(a);
  auto outs = net->forwardAll(torch::randn({1, 1, 16, 16, 16}));
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].sizes() == torch::IntArrayRef({1, 3, 16, 16, 16}));
  CHECK(outs[1].sizes() == torch::IntArrayRef({1, 3, 8, 8, 8}));
}

TEST_CASE("the TorchScript network computes what the eager one does", "[network]") {
  TempDir dir;
  BundleSpec spec = segnode::test::tinySpec(4);
  spec.architecture.strides[1] = {2, 2, 1};  // anisotropic, to catch an axis-order mix-up
  spec.architecture.kernelSizes[0] = {3, 3, 1};
  spec.architecture.convBias = false;
  BundleSpec written = writeRandomBundle(spec, dir / "b", 11);
  auto eager = SegmentationModel::load(written, Backend::Eager);
  auto scripted = SegmentationModel::load(written, Backend::TorchScript);
  c10::InferenceMode guard;
  torch::Tensor x = torch::randn({2, 1, 12, 16, 20});
  for (int i = 0; i < 3; ++i) {  // the profiling executor changes the graph after its first runs
    torch::Tensor a = eager->forward(x), b = scripted->forward(x);
    REQUIRE(a.sizes() == b.sizes());
    CHECK(torch::allclose(a, b, 1e-4, 1e-4));
  }
}

#ifdef SEGNODE_WITH_ONEDNN
// Channel counts that are not multiples of 16 exercise the norm kernel's lane patterns and its
// scalar tail; anisotropic strides and kernels catch an axis-order mix-up.
TEST_CASE("the oneDNN network computes what the eager one does", "[network][onednn]") {
  for (bool bias : {false, true}) {
    TempDir dir;
    BundleSpec spec = segnode::test::tinySpec(5);
    spec.architecture.features = {5, 12, 20};
    spec.architecture.strides[1] = {2, 2, 1};
    spec.architecture.kernelSizes[0] = {3, 3, 1};
    spec.architecture.convBias = bias;
    BundleSpec written = writeRandomBundle(spec, dir / "b", bias ? 12 : 11);
    auto eager = SegmentationModel::load(written, Backend::Eager);
    auto dnnl = SegmentationModel::load(written, Backend::OneDnn);
    c10::InferenceMode guard;
    torch::manual_seed(3);
    torch::Tensor x = torch::randn({2, 1, 12, 16, 20}) * 50 + 300;  // a large mean, as raw MR has
    torch::Tensor a = eager->forward(x), b = dnnl->forward(x);
    REQUIRE(a.sizes() == b.sizes());
    CHECK(b.stride(1) == 1);  // channels-last: classes fastest
    CHECK(torch::allclose(a, b, 1e-3, 1e-3));
    CHECK(torch::allclose(a, dnnl->forward(x), 1e-3, 1e-3));  // the cached primitives again
  }
}

TEST_CASE("the oneDNN network in bf16 stays close to float32", "[network][onednn][bf16]") {
  TempDir dir;
  BundleSpec written = writeRandomBundle(segnode::test::tinySpec(3), dir / "b", 21);
  auto fp32 = SegmentationModel::load(written, Backend::OneDnn, Precision::Float32);
  auto bf16 = SegmentationModel::load(written, Backend::OneDnn, Precision::BFloat16);
  if (!cpuHasNativeBf16()) {  // emulated bf16 is slower than float32: the model falls back
    CHECK(bf16->precision() == Precision::Float32);
    return;
  }
  c10::InferenceMode guard;
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({1, 1, 32, 32, 32});
  torch::Tensor a = fp32->forward(x), b = bf16->forward(x);
  REQUIRE(a.sizes() == b.sizes());
  CHECK(b.scalar_type() == torch::kFloat);
  double scale = a.abs().max().item<double>();
  CHECK((a - b).abs().max().item<double>() < 0.1 * scale);
  CHECK((a - b).abs().max().item<double>() > 0);  // it really ran in bf16
  CHECK((a.argmax(1) == b.argmax(1)).to(torch::kFloat).mean().item<double>() > 0.9);
}

TEST_CASE("the oneDNN network in int8, calibrated, stays close to float32 and its calibration round-trips", "[network][onednn][int8]") {
  TempDir dir;
  BundleSpec written = writeRandomBundle(segnode::test::tinySpec(3), dir / "b", 31);
  CHECK_THROWS_WITH(SegmentationModel::load(written, Backend::OneDnn, Precision::Int8),
                    Catch::Contains("int8_calibration"));  // no calibration, no int8
  auto fp32 = SegmentationModel::load(written, Backend::OneDnn, Precision::Float32);
  c10::InferenceMode guard;
  torch::manual_seed(5);
  torch::Tensor x = torch::randn({1, 1, 32, 32, 32});
  written.inference.int8.activationAbsmax = fp32->calibrationAbsmax(x);
  written.inference.int8.images = "one random tile";
  // Every convolution but the first and the head: 3 stages x 2 encoder + 2 x 2 decoder - 1.
  REQUIRE(written.inference.int8.activationAbsmax.size() == 9);
  CHECK(written.inference.int8.activationAbsmax[0].size() == 4);  // stage 0's 4 channels
  for (const auto& conv : written.inference.int8.activationAbsmax)
    for (double v : conv) CHECK(v > 0);
  saveBundleSpec(written, dir / "b" / "bundle.yaml");
  BundleSpec reread = loadBundleSpec(dir / "b");
  REQUIRE(reread.inference.int8.activationAbsmax.size() == 9);
  CHECK(reread.inference.int8.activationAbsmax[0][1] == Approx(written.inference.int8.activationAbsmax[0][1]).epsilon(1e-4));
  auto int8 = SegmentationModel::load(reread, Backend::OneDnn, Precision::Int8);
  if (!cpuHasInt8Dot()) {  // no VNNI / AMX-INT8: emulated int8 is pointless, the model falls back
    CHECK(int8->precision() == Precision::Float32);
    return;
  }
  REQUIRE(int8->precision() == Precision::Int8);
  torch::Tensor a = fp32->forward(x), b = int8->forward(x);
  REQUIRE(a.sizes() == b.sizes());
  const double scale = a.abs().max().item<double>();
  CHECK((a - b).abs().max().item<double>() < 0.1 * scale);
  CHECK((a - b).abs().max().item<double>() > 0);  // it really ran on 8 bits
  CHECK((a.argmax(1) == b.argmax(1)).to(torch::kFloat).mean().item<double>() > 0.9);
  // A calibration for another network is refused with the counts, not run.
  reread.inference.int8.activationAbsmax.pop_back();
  auto wrong = SegmentationModel::load(reread, Backend::OneDnn, Precision::Int8);
  CHECK_THROWS_WITH(wrong->forward(x), Catch::Contains("lists 8 convolutions, another network"));
}

TEST_CASE("the oneDNN network serves several threads at once", "[network][onednn]") {
  TempDir dir;
  BundleSpec written = writeRandomBundle(segnode::test::tinySpec(3), dir / "b", 8);
  auto model = SegmentationModel::load(written, Backend::OneDnn);
  torch::manual_seed(6);
  torch::Tensor x = torch::randn({1, 1, 16, 16, 16});
  torch::Tensor expected;
  {
    c10::InferenceMode guard;
    expected = model->forward(x).clone();
  }
  std::vector<std::thread> threads;
  std::atomic<int> same{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      c10::InferenceMode guard;
      at::set_num_threads(1);
      for (int i = 0; i < 3; ++i)
        if (torch::allclose(model->forward(x), expected, 1e-5, 1e-5)) ++same;
    });
  for (auto& t : threads) t.join();
  CHECK(same == 12);
}

TEST_CASE("the oneDNN network refuses an input its strides cannot divide", "[network][onednn]") {
  TempDir dir;
  BundleSpec written = writeRandomBundle(segnode::test::tinySpec(3), dir / "b", 8);
  auto model = SegmentationModel::load(written, Backend::OneDnn);
  c10::InferenceMode guard;
  CHECK_THROWS_WITH(model->forward(torch::randn({1, 1, 16, 16, 15})), Catch::Contains("divisible"));
}
#endif

TEST_CASE("segmentation results do not depend on the thread count", "[network]") {
  TempDir dir;
  BundleSpec written = writeRandomBundle(segnode::test::tinySpec(3), dir / "b", 5);
  auto model = SegmentationModel::load(written);
  Volume v;
  v.geometry.size = {40, 36, 30};
  v.geometry.spacing = {1, 1, 1};
  torch::manual_seed(2);
  v.data = torch::rand({30, 36, 40}) * 100;
  int saved = at::get_num_threads();
  at::set_num_threads(1);
  Volume one = segment(*model, v);
  at::set_num_threads(2);
  Volume two = segment(*model, v);
  at::set_num_threads(saved);
  CHECK(torch::equal(one.data, two.data));
  // Label values come from the bundle's table.
  auto values = std::get<0>(at::_unique(one.data));
  for (int64_t i = 0; i < values.numel(); ++i) {
    int val = values[i].item<int>();
    CHECK((val == 0 || val == 10 || val == 20));
  }
}

TEST_CASE("segment returns labels on the input grid for any orientation and spacing", "[network]") {
  TempDir dir;
  BundleSpec spec = segnode::test::tinySpec(3);
  spec.preprocessing.targetSpacing = {1.5, 1.5, 1.5};
  BundleSpec written = writeRandomBundle(spec, dir / "b", 9);
  auto model = SegmentationModel::load(written);
  Volume v;
  v.geometry.size = {33, 20, 25};
  v.geometry.spacing = {0.9, 2.0, 1.2};
  v.geometry.origin = {4, 5, 6};
  v.geometry.direction = {{{0, 0, -1}, {-1, 0, 0}, {0, 1, 0}}};
  v.data = torch::randint(1, 1000, {25, 20, 33}, torch::kShort);
  SegmentStats stats;
  Volume out = segment(*model, v, {}, &stats);
  CHECK(out.data.sizes() == v.data.sizes());
  CHECK(out.data.scalar_type() == torch::kByte);
  CHECK(out.geometry.affine() == v.geometry.affine());
  CHECK((stats.networkSize == Size3{20, 20, 27}));  // canonical x <- k, y <- i, z <- j, resampled to 1.5 mm
}

TEST_CASE("the tensor cache reuses freed blocks and keeps their contents private", "[network][cache]") {
  installTensorCache();
  auto before = tensorCacheStats();
  for (int i = 0; i < 5; ++i) {
    torch::Tensor a = torch::full({4, 256, 256}, float(i));  // 4 MiB: cached size class
    CHECK(a.sum().item<double>() == Approx(double(i) * 4 * 256 * 256));
  }
  auto after = tensorCacheStats();
  CHECK(after.hits - before.hits >= 4);  // the first allocation may miss, the next four reuse it
  // Zero-filled allocations are still zero when the block is reused.
  torch::Tensor z = torch::zeros({4, 256, 256});
  CHECK(z.abs().max().item<float>() == 0);
  releaseTensorCache();
  CHECK(tensorCacheStats().cachedBytes == 0);
}

TEST_CASE("bf16 inference (opt-in) stays close to float32 and keeps the output shape", "[network][bf16]") {
  TempDir dir;
  BundleSpec written = writeRandomBundle(segnode::test::tinySpec(3), dir / "b", 21);
  auto fp32 = SegmentationModel::load(written, Backend::TorchScript, Precision::Float32);
  auto bf16 = SegmentationModel::load(written, Backend::TorchScript, Precision::BFloat16);
  CHECK(bf16->precision() == (cpuHasNativeBf16() ? Precision::BFloat16 : Precision::Float32));
  c10::InferenceMode guard;
  torch::manual_seed(4);
  torch::Tensor x = torch::randn({1, 1, 32, 32, 32});
  for (int i = 0; i < 3; ++i) {
    torch::Tensor a = fp32->forward(x), b = bf16->forward(x);
    REQUIRE(a.sizes() == b.sizes());
    CHECK(b.scalar_type() == torch::kFloat);
    // bf16 keeps 8 bits of mantissa: differences of a few percent of the logits' range.
    double scale = a.abs().max().item<double>();
    CHECK((a - b).abs().max().item<double>() < 0.1 * scale);
  }
  CHECK_THROWS_WITH(SegmentationModel::load(written, Backend::Eager, Precision::BFloat16), Catch::Contains("script backend"));
}
