#include "engine/nn/DnnlUNet.h"

#include <ATen/Parallel.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "common/Error.h"
#include "engine/nn/FusedKernels.h"

namespace segnode::engine {
namespace {

using dims = dnnl::memory::dims;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

// ---- The network's weights, in the order they run ---------------------------------------------

using Triple = std::array<int64_t, 3>;  // (z, y, x), tensor order

Triple zyx(const std::array<int, 3>& xyz) { return {xyz[2], xyz[1], xyz[0]}; }

struct ConvParams {
  int64_t in = 0, out = 0;
  Triple kernel{1, 1, 1}, stride{1, 1, 1};
  torch::Tensor weight, bias;  // [out, in, kz, ky, kx] float32; bias may be undefined
  torch::Tensor gamma, beta;   // instance norm; undefined for the head
};

// A transposed convolution with kernel = stride does not overlap: it is one matrix product
// [coarse voxels, in] x [in, K * out] (K = kernel offsets) followed by a scatter.
struct UpParams {
  int64_t in = 0, out = 0;
  Triple stride{2, 2, 2};      // kernel = stride
  torch::Tensor weight, bias;  // [in, K * out] with the output channel fastest; [K * out]
};

struct Network {
  int64_t inChannels = 1, classes = 2;
  std::vector<std::vector<ConvParams>> encoder;  // per stage
  std::vector<UpParams> up;                      // per decoder step, deepest first
  std::vector<std::vector<ConvParams>> decoder;  // per decoder step
  ConvParams head;
};

Network buildNetwork(const ArchitectureSpec& a, const TensorMap& weights) {
  auto get = [&](const std::string& name) {
    auto it = weights.find(name);
    if (it == weights.end()) throw Error(ErrorCode::BadBundle, "weights: tensor '" + name + "' is missing");
    return it->second.to(torch::kFloat).contiguous();
  };
  auto conv = [&](const std::string& prefix, int64_t in, int64_t out, const std::array<int, 3>& kernel,
                  const std::array<int, 3>& stride) {
    ConvParams p;
    p.in = in, p.out = out, p.kernel = zyx(kernel), p.stride = zyx(stride);
    p.weight = get(prefix + ".conv.weight");
    if (a.convBias) p.bias = get(prefix + ".conv.bias");
    p.gamma = get(prefix + ".norm.weight");
    p.beta = get(prefix + ".norm.bias");
    return p;
  };
  Network net;
  net.inChannels = a.inChannels;
  net.classes = a.numClasses;
  const int n = a.stages();
  const auto& f = a.features;
  for (int s = 0; s < n; ++s) {
    std::vector<ConvParams> stage;
    for (int c = 0; c < a.convsPerStage[size_t(s)]; ++c) {
      int64_t in = c > 0 ? f[size_t(s)] : (s == 0 ? a.inChannels : f[size_t(s - 1)]);
      stage.push_back(conv("encoder." + std::to_string(s) + "." + std::to_string(c), in, f[size_t(s)],
                           a.kernelSizes[size_t(s)], c == 0 ? a.strides[size_t(s)] : std::array<int, 3>{1, 1, 1}));
    }
    net.encoder.push_back(std::move(stage));
  }
  for (int d = 0; d < n - 1; ++d) {
    const int s = n - 2 - d;
    const std::string id = std::to_string(d);
    UpParams up;
    up.in = f[size_t(s + 1)], up.out = f[size_t(s)], up.stride = zyx(a.strides[size_t(s + 1)]);
    // torch keeps [in, out, kz, ky, kx]; the product wants [in, (kz, ky, kx, out)].
    up.weight = get("upsample." + id + ".weight").permute({0, 2, 3, 4, 1}).reshape({up.in, -1}).contiguous();
    up.bias = get("upsample." + id + ".bias").repeat({up.weight.size(1) / up.out}).contiguous();
    net.up.push_back(up);
    std::vector<ConvParams> stage;
    for (int c = 0; c < a.convsPerStageDecoder[size_t(s)]; ++c)
      stage.push_back(conv("decoder." + id + "." + std::to_string(c), c == 0 ? 2 * f[size_t(s)] : f[size_t(s)],
                           f[size_t(s)], a.kernelSizes[size_t(s)], {1, 1, 1}));
    net.decoder.push_back(std::move(stage));
  }
  const std::string head = "heads." + std::to_string(n - 2);
  net.head.in = f[0], net.head.out = a.numClasses;
  net.head.weight = get(head + ".weight");
  net.head.bias = get(head + ".bias");
  return net;
}

// ---- Primitives and buffers for one tile shape, used by one thread ----------------------------

// How a context computes: in float32, in bf16, with 8-bit convolutions (int8: the activations
// stay float32 and each convolution's input is quantised by a reorder), or in float32 recording
// each would-be-quantised input's largest |value| (calibration).
enum class Mode { F32, Bf16, Int8, Calibrate };

class Context {
 public:
  // absmax: Int8's calibration (one entry a quantised convolution), or Calibrate's running maxima.
  Context(const Network& net, const Triple& size, Mode mode, std::vector<std::vector<double>>* absmax,
          double percentile = 100)
      : act_(mode == Mode::Bf16 ? dt::bf16 : dt::f32), mode_(mode), absmax_(absmax), percentile_(percentile) {
    const bool bf16 = mode == Mode::Bf16;
    dims in{1, net.inChannels, size[0], size[1], size[2]};
    input_ = dnnl::memory({in, dt::f32, tag::ndhwc}, eng_, DNNL_MEMORY_NONE);
    dnnl::memory x = input_;
    if (bf16) {  // the first convolution reads bf16 like every other
      dnnl::memory converted = activation({in, dt::bf16, tag::ndhwc});
      push({dnnl::reorder(input_, converted), {{DNNL_ARG_FROM, input_}, {DNNL_ARG_TO, converted}}, {}});
      x = converted;
    }
    std::vector<dnnl::memory> skips;
    for (const auto& stage : net.encoder) {
      for (const auto& c : stage) x = addConv(c, x, act_, false, /*quantisable=*/&c != &net.encoder[0][0]);
      skips.push_back(x);
    }
    skips.pop_back();  // the deepest stage feeds the decoder directly
    for (size_t d = 0; d < net.up.size(); ++d) {
      x = addUpConcat(net.up[d], x, skips[skips.size() - 1 - d]);
      for (const auto& c : net.decoder[d]) x = addConv(c, x, act_, false, true);
    }
    logits_ = addConv(net.head, x, dt::f32, /*userDst=*/true);
    assignBlocks();
    if (mode_ == Mode::Int8 && quantised_ != absmax_->size()) throwCalibrationCount();
  }

  // input: [z, y, x, in_channels] float32; logits: [z, y, x, classes] float32.
  void run(const float* input, float* logits) {
    input_.set_data_handle(const_cast<float*>(input));
    logits_.set_data_handle(logits);
    for (auto& s : steps_) {
      if (s.primitive) s.primitive->execute(stream_, s.args);
      if (s.then) {
        stream_.wait();
        s.then();
      }
    }
    stream_.wait();
  }

 private:
  struct Step {
    std::optional<dnnl::primitive> primitive;  // none: our own kernel alone
    std::unordered_map<int, dnnl::memory> args;
    std::function<void()> then;  // our own kernel on the primitive's output
  };

  // Activations share memory. Each buffer is a slot, live from the step that writes it to the
  // last step that reads it; slots whose lives do not overlap take the same block. Without this
  // the teacher's context held every full-resolution buffer at once (270 MB each at 128^3).
  struct Slot {
    size_t bytes = 0;
    size_t first = 0, last = 0;       // step indices
    std::vector<dnnl::memory> views;  // memories that see this slot's block
  };

  dnnl::memory activation(const dnnl::memory::desc& d) {  // a new slot, written by the next step
    dnnl::memory m(d, eng_, DNNL_MEMORY_NONE);
    slotOf_[m.get()] = slots_.size();
    slots_.push_back({d.get_size(), steps_.size(), steps_.size(), {m}});
    return m;
  }

  dnnl::memory view(const dnnl::memory& of, const dnnl::memory::desc& d) {  // the same block, another shape
    dnnl::memory m(d, eng_, DNNL_MEMORY_NONE);
    const size_t slot = slotOf_.at(of.get());
    slotOf_[m.get()] = slot;
    slots_[slot].views.push_back(m);
    return m;
  }

  // Appends a step; its arguments (and what its own kernel reads or writes besides them) extend
  // the lives of their slots.
  void push(Step step, std::initializer_list<dnnl::memory> alsoTouches = {}) {
    auto touch = [&](const dnnl::memory& m) {
      if (auto it = slotOf_.find(m.get()); it != slotOf_.end())
        slots_[it->second].last = std::max(slots_[it->second].last, steps_.size());
    };
    for (const auto& [arg, m] : step.args) touch(m);
    for (const auto& m : alsoTouches) touch(m);
    steps_.push_back(std::move(step));
  }

  // Slots in the order they are written; each takes the smallest free block that fits.
  void assignBlocks() {
    struct Block {
      char* data;
      size_t bytes, busyUntil;  // the last step of the slot it holds
    };
    std::vector<Block> pool;
    for (auto& slot : slots_) {
      Block* best = nullptr;
      for (auto& b : pool)
        if (b.busyUntil < slot.first && b.bytes >= slot.bytes && (!best || b.bytes < best->bytes)) best = &b;
      if (!best) {
        const size_t bytes = (slot.bytes + 63) / 64 * 64;
        blocks_.emplace_back(static_cast<char*>(std::aligned_alloc(64, bytes)), &std::free);
        if (!blocks_.back()) throw std::bad_alloc();
        pool.push_back({blocks_.back().get(), bytes, 0});
        best = &pool.back();
      }
      best->busyUntil = slot.last;
      for (auto& v : slot.views) v.set_data_handle(best->data);
    }
  }

  template <class F>
  void typed(F f) {  // f(float{}) or f(uint16_t{}): the activations' element type
    if (act_ == dt::bf16) f(uint16_t{});
    else f(float{});
  }

  static dnnl::memory::desc ndhwc(const dims& d, dt type) { return {d, type, tag::ndhwc}; }

  // A user memory (plain layout) reordered into the layout a primitive picked.
  dnnl::memory inLayout(dnnl::memory user, const dnnl::memory::desc& want) {
    dnnl::memory out(want, eng_);
    dnnl::reorder(user, out).execute(stream_, user, out);
    stream_.wait();
    return out;
  }

  // Weights from the user's float32 [out, in, k...] into the layout the primitive picked.
  dnnl::memory prepareWeights(const torch::Tensor& w, const dnnl::memory::desc& want) {
    dims wd(w.sizes().begin(), w.sizes().end());
    return inLayout(dnnl::memory({wd, dt::f32, tag::oidhw}, eng_, w.data_ptr<float>()), want);
  }

  dnnl::memory bias(const torch::Tensor& b) {
    return dnnl::memory({{b.size(0)}, dt::f32, tag::a}, eng_, b.data_ptr<float>());
  }

  // Convolution with nnU-Net's padding (kernel / 2), then instance norm + leaky ReLU unless this
  // is the head. The head writes into the caller's logits buffer (set per run). `quantisable`:
  // in Int8 mode the input is quantised and the convolution runs on 8 bits, without its bias:
  // instance norm follows, and a per-channel constant is exactly what its mean subtracts.
  dnnl::memory addConv(const ConvParams& p, dnnl::memory src, dt outType, bool userDst = false, bool quantisable = false) {
    const dims s = src.get_desc().dims();
    dims out{1, p.out}, strides, pad;
    for (int a = 0; a < 3; ++a) {
      const int64_t k = p.kernel[size_t(a)], st = p.stride[size_t(a)], pd = k / 2;
      out.push_back((s[size_t(2 + a)] + 2 * pd - k) / st + 1);
      strides.push_back(st);
      pad.push_back(pd);
    }
    if (quantisable && mode_ == Mode::Calibrate) {
      if (absmax_->size() <= quantised_) absmax_->resize(quantised_ + 1);
      observeAbsmax(src, quantised_);
    }
    const bool int8 = quantisable && mode_ == Mode::Int8 && p.gamma.defined();
    const bool withBias = p.bias.defined() && !int8;
    const size_t point = quantisable ? quantised_++ : 0;
    dnnl::primitive_attr attr;
    torch::Tensor weightScales, foldedWeight;  // int8: per output channel; the weights times the input steps
    if (int8) {
      // Per input channel: q_c = x_c * 127 / absmax_c; the step absmax_c / 127 is folded into the
      // weights, which are then quantised per output channel.
      if (point >= absmax_->size()) throwCalibrationCount();
      const auto& absmax = (*absmax_)[point];
      if (int64_t(absmax.size()) != p.in)
        throw Error(ErrorCode::BadBundle, "inference.int8_calibration: convolution " + std::to_string(point) + " lists " +
                                              std::to_string(absmax.size()) + " channels, it has " + std::to_string(p.in));
      torch::Tensor step = torch::tensor(std::vector<float>(absmax.begin(), absmax.end())).clamp_min(1e-6) / 127.0;
      src = quantise(src, (1.0 / step).contiguous());
      foldedWeight = p.weight * step.view({1, -1, 1, 1, 1});
      weightScales = (foldedWeight.abs().amax({1, 2, 3, 4}).clamp_min(1e-12) / 127.0).contiguous();
      attr.set_output_scales(1 << 1, std::vector<float>(weightScales.data_ptr<float>(), weightScales.data_ptr<float>() + p.out));
    }
    dims wdims{p.out, p.in, p.kernel[0], p.kernel[1], p.kernel[2]};
    const dt weightType = int8 ? dt::s8 : act_;
    auto desc = withBias
                    ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                      src.get_desc(), {wdims, weightType, tag::any}, {{p.out}, dt::f32, tag::a},
                                                      ndhwc(out, outType), strides, pad, pad)
                    : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                                      src.get_desc(), {wdims, weightType, tag::any}, ndhwc(out, outType), strides,
                                                      pad, pad);
    dnnl::convolution_forward::primitive_desc pd(desc, attr, eng_);
    dnnl::memory dst = userDst ? dnnl::memory(pd.dst_desc(), eng_, DNNL_MEMORY_NONE) : activation(pd.dst_desc());
    dnnl::memory weights = int8 ? prepareInt8Weights(foldedWeight, weightScales, pd.weights_desc())
                                : prepareWeights(p.weight, pd.weights_desc());
    Step step{dnnl::convolution_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}}, {}};
    if (withBias) step.args[DNNL_ARG_BIAS] = bias(p.bias);
    if (p.gamma.defined())
      step.then = [this, dst, voxels = out[2] * out[3] * out[4], &p] {
        typed([&](auto t) {
          kernels::normLeakyRelu(static_cast<decltype(t)*>(dst.get_data_handle()), voxels, p.out, p.gamma.data_ptr<float>(),
                  p.beta.data_ptr<float>());
        });
      };
    push(std::move(step));
    return dst;
  }

  [[noreturn]] void throwCalibrationCount() const {
    throw Error(ErrorCode::BadBundle, "inference.int8_calibration lists " + std::to_string(absmax_->size()) +
                                          " convolutions, another network than this one (run segnode-distill calibrate)");
  }

  // float32 -> int8, q = saturate(round(x * scale_c)): a oneDNN reorder with per-channel scales.
  dnnl::memory quantise(const dnnl::memory& src, const torch::Tensor& scales) {
    dnnl::memory q = activation(ndhwc(src.get_desc().dims(), dt::s8));
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, std::vector<float>(scales.data_ptr<float>(), scales.data_ptr<float>() + scales.numel()));
    dnnl::reorder::primitive_desc pd(eng_, src.get_desc(), eng_, q.get_desc(), attr);
    push({dnnl::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, q}}, {}});
    return q;
  }

  // Weights quantised per output channel (symmetric, scale = max |w| / 127), then reordered into
  // the primitive's layout (which adds the compensation oneDNN needs for signed input).
  dnnl::memory prepareInt8Weights(const torch::Tensor& w, const torch::Tensor& scales, const dnnl::memory::desc& want) {
    torch::Tensor q = (w / scales.view({-1, 1, 1, 1, 1})).round().clamp(-127, 127).to(torch::kChar).contiguous();
    dims wd(w.sizes().begin(), w.sizes().end());
    return inLayout(dnnl::memory({wd, dt::s8, tag::oidhw}, eng_, q.data_ptr<int8_t>()), want);
  }

  // Calibration: each channel's |value| at the calibration percentile (100: the largest) in this
  // tile, kept as a running maximum over tiles.
  void observeAbsmax(const dnnl::memory& src, size_t point) {
    const dims d = src.get_desc().dims();
    const int64_t channels = d[1], voxels = d[2] * d[3] * d[4];
    (*absmax_)[point].resize(size_t(channels), 0.0);
    push({std::nullopt, {}, [this, src, point, channels, voxels] {
            // NDHWC: [voxels, channels]
            torch::Tensor x = torch::from_blob(src.get_data_handle(), {voxels, channels}).abs();
            const int64_t k = std::clamp<int64_t>(int64_t(std::ceil(percentile_ / 100.0 * double(voxels))), 1, voxels);
            torch::Tensor q = k == voxels ? std::get<0>(x.max(0)) : std::get<0>(x.kthvalue(k, 0));
            auto& out = (*absmax_)[point];
            for (int64_t c = 0; c < channels; ++c) out[size_t(c)] = std::max(out[size_t(c)], double(q[c].item<float>()));
          }},
         {src});
  }

  // Upsampling (transposed convolution, kernel = stride) and the skip concatenation: a oneDNN
  // matrix product, then one pass that scatters its rows and copies the skip beside them.
  dnnl::memory addUpConcat(const UpParams& p, const dnnl::memory& src, const dnnl::memory& skip) {
    const dims s = src.get_desc().dims(), sk = skip.get_desc().dims();
    const int64_t coarse = s[2] * s[3] * s[4], n = p.weight.size(1);
    dims out{1, p.out + sk[1]};
    for (int a = 0; a < 3; ++a) {
      out.push_back(s[size_t(2 + a)] * p.stride[size_t(a)]);
      if (out.back() != sk[size_t(2 + a)])
        throw Error(ErrorCode::InvalidArgument,
                    "network input size must be divisible by the product of the strides (upsampled and skip grids differ)");
    }
    dnnl::memory::desc srcMd({coarse, p.in}, act_, tag::ab), dstMd({coarse, n}, act_, tag::ab);
    dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(srcMd, {{p.in, n}, act_, tag::any}, {{1, n}, dt::f32, tag::ab}, dstMd),
                                    eng_);
    dnnl::memory srcMat = view(src, srcMd), product = activation(dstMd), cat = activation(ndhwc(out, act_));
    dnnl::memory w = inLayout(dnnl::memory({{p.in, n}, dt::f32, tag::ab}, eng_, p.weight.data_ptr<float>()), pd.weights_desc());
    Step step{dnnl::matmul(pd),
              {{DNNL_ARG_SRC, srcMat},
               {DNNL_ARG_WEIGHTS, w},
               {DNNL_ARG_BIAS, dnnl::memory({{1, n}, dt::f32, tag::ab}, eng_, p.bias.data_ptr<float>())},
               {DNNL_ARG_DST, product}},
              {}};
    const std::array<int64_t, 3> grid{s[2], s[3], s[4]};
    step.then = [this, product, skip, cat, grid, &p, skipChannels = sk[1]] {
      typed([&](auto t) {
        using T = decltype(t);
        kernels::scatterConcat(static_cast<const T*>(product.get_data_handle()), static_cast<const T*>(skip.get_data_handle()),
                      static_cast<T*>(cat.get_data_handle()), grid, p.stride, p.out, skipChannels);
      });
    };
    push(std::move(step), {skip, cat});
    return cat;
  }

  dnnl::engine eng_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{eng_};
  dt act_;
  Mode mode_;
  std::vector<std::vector<double>>* absmax_;
  size_t quantised_ = 0;  // quantisable convolutions so far
  double percentile_ = 100;  // Calibrate: of |x| per channel
  std::vector<Step> steps_;
  std::vector<Slot> slots_;
  std::map<dnnl_memory_t, size_t> slotOf_;
  std::vector<std::unique_ptr<char, decltype(&std::free)>> blocks_;
  dnnl::memory input_, logits_;
};

// x: [N, in_channels, z, y, x] float32 -> logits [N, classes, z, y, x], channels-last.
torch::Tensor runContext(Context& ctx, const torch::Tensor& x, int64_t classes) {
  torch::Tensor in = x.permute({0, 2, 3, 4, 1}).contiguous();  // NDHWC (no copy for one channel)
  torch::Tensor out = torch::empty({x.size(0), x.size(2), x.size(3), x.size(4), classes});
  for (int64_t n = 0; n < x.size(0); ++n) ctx.run(in[n].data_ptr<float>(), out[n].data_ptr<float>());
  return out.permute({0, 4, 1, 2, 3});
}

}  // namespace

struct DnnlUNet::Impl {
  Network net;
  Mode mode = Mode::F32;
  std::vector<std::vector<double>> int8Absmax;  // the bundle's calibration (Int8)
  std::mutex mutex;
  // Per calling thread, tile shape and thread count: oneDNN picks its kernels for both.
  std::map<std::tuple<std::thread::id, int64_t, int64_t, int64_t, int>, std::unique_ptr<Context>> contexts;

  Context& context(const Triple& size) {
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = contexts[{std::this_thread::get_id(), size[0], size[1], size[2], at::get_num_threads()}];
    if (!slot) {
      try {
        slot = std::make_unique<Context>(net, size, mode, &int8Absmax);
      } catch (const dnnl::error& e) {
        throw Error(ErrorCode::Unsupported, std::string("oneDNN cannot run this network on this CPU") +
                                                (mode == Mode::Bf16 ? " in bf16" : mode == Mode::Int8 ? " in int8" : "") + ": " + e.what());
      }
    }
    return *slot;
  }

};

DnnlUNet::DnnlUNet(const ArchitectureSpec& spec, const TensorMap& weights, Precision precision,
                   const std::vector<std::vector<double>>& int8Absmax)
    : impl_(std::make_unique<Impl>()) {
  impl_->net = buildNetwork(spec, weights);
  impl_->mode = precision == Precision::BFloat16 ? Mode::Bf16 : precision == Precision::Int8 ? Mode::Int8 : Mode::F32;
  impl_->int8Absmax = int8Absmax;
  if (impl_->mode == Mode::Int8 && int8Absmax.empty())
    throw Error(ErrorCode::BadBundle, "int8 needs inference.int8_calibration (segnode-distill calibrate)");
}

DnnlUNet::~DnnlUNet() = default;

void DnnlUNet::checkInput(const torch::Tensor& x) const {
  if (x.dim() != 5 || x.size(1) != impl_->net.inChannels || x.scalar_type() != torch::kFloat)
    throw Error(ErrorCode::InvalidArgument,
                "network input must be float32 [N, " + std::to_string(impl_->net.inChannels) + ", z, y, x]");
}

std::vector<std::vector<double>> DnnlUNet::calibrationAbsmax(const torch::Tensor& x, double percentile) const {
  checkInput(x);
  std::vector<std::vector<double>> absmax;
  // The calibration context keeps a pointer to `absmax`: one context per call, dropped after.
  Context ctx(impl_->net, {x.size(2), x.size(3), x.size(4)}, Mode::Calibrate, &absmax, percentile);
  runContext(ctx, x, impl_->net.classes);
  return absmax;
}

torch::Tensor DnnlUNet::forward(const torch::Tensor& x) const {
  checkInput(x);
  return runContext(impl_->context({x.size(2), x.size(3), x.size(4)}), x, impl_->net.classes);
}

}  // namespace segnode::engine
