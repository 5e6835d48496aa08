#include "training/Synth.h"

#include <torch/torch.h>

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <atomic>
#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "common/Error.h"
#include "engine/Nifti.h"
#include "engine/Preprocess.h"
#include "engine/Resample.h"

namespace segnode::training {
namespace F = torch::nn::functional;
using engine::Vec3;

int GenerationTable::numClasses() const {
  int n = 0;
  for (int c : classes) n = std::max(n, c + 1);
  return n;
}

int GenerationTable::phaseIndex(const std::string& name) const {
  for (size_t i = 0; i < phases.size(); ++i)
    if (phases[i] == name) return int(i);
  std::string known;
  for (const auto& p : phases) known += (known.empty() ? "" : ", ") + p;
  throw Error(ErrorCode::InvalidArgument, "contrast phase '" + name + "' is not in the CT table (it has: " +
                                              (known.empty() ? "none, not a CT table" : known) + ")");
}

namespace {

// A CT table: one row per (kind, value, name, phase) with the Gaussian prior of that phase;
// phase "all" fills every phase. Kinds: label (a generation label of the maps, its own class),
// body (the value the body hull gives unlabelled voxels), tissue (a blob of the body's palette,
// `weight` its share). The phases are those named in the file, in order of appearance.
GenerationTable readCtTsv(const std::vector<std::string>& lines, size_t header, const std::filesystem::path& path) {
  struct Row { std::string kind, value, name, phase; IntensityPrior p; double weight; int line; };
  std::vector<Row> rows;
  std::vector<std::string> phases;
  std::string aorta;
  for (size_t i = header + 1; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const int lineNo = int(i) + 1;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    Row r;
    r.line = lineNo;
    if (!std::getline(ss, r.kind, '\t') || !std::getline(ss, r.value, '\t') || !std::getline(ss, r.name, '\t') ||
        !std::getline(ss, r.phase, '\t') || !(ss >> r.p.meanMu >> r.p.meanSd >> r.p.stdMu >> r.p.stdSd >> r.weight))
      throw Error(ErrorCode::BadInput, path.string() + ":" + std::to_string(lineNo) +
                                           ": expected kind, value, name, phase (tab-separated), mean, mean_sd, std, std_sd, weight");
    if (r.kind != "label" && r.kind != "body" && r.kind != "tissue")
      throw Error(ErrorCode::BadInput, path.string() + ":" + std::to_string(lineNo) + ": kind '" + r.kind +
                                           "' is not label, body or tissue");
    if (r.kind == "label" && r.name == "aorta") aorta = r.value;
    if (r.phase != "all" && std::find(phases.begin(), phases.end(), r.phase) == phases.end()) phases.push_back(r.phase);
    rows.push_back(r);
  }
  if (phases.empty()) throw Error(ErrorCode::BadInput, path.string() + ": no row names a contrast phase");
  GenerationTable t;
  t.phases = phases;
  t.phasePriors.assign(phases.size(), {});
  // Entries in order of first appearance; each must end with a prior in every phase.
  std::vector<std::string> keys;
  std::map<std::string, std::vector<std::optional<IntensityPrior>>> priors;
  std::map<std::string, const Row*> first;
  for (const auto& r : rows) {
    std::string key = r.kind == "tissue" ? "tissue:" + r.name : "value:" + r.value;
    if (!priors.count(key)) keys.push_back(key), priors[key].resize(phases.size()), first[key] = &r;
    for (size_t ph = 0; ph < phases.size(); ++ph)
      if (r.phase == "all" || r.phase == phases[ph]) priors[key][ph] = r.p;
  }
  for (const auto& key : keys) {
    const Row& r = *first[key];
    std::vector<IntensityPrior> byPhase;
    for (size_t ph = 0; ph < phases.size(); ++ph) {
      if (!priors[key][ph])
        throw Error(ErrorCode::BadInput, path.string() + ":" + std::to_string(r.line) + ": " + r.kind + " '" + r.name +
                                             "' has no prior for phase " + phases[ph]);
      byPhase.push_back(*priors[key][ph]);
    }
    if (r.kind == "tissue") {
      t.tissues.push_back({r.name, r.weight, byPhase});
      continue;
    }
    int value = 0;
    try { value = std::stoi(r.value); } catch (...) {
      throw Error(ErrorCode::BadInput, path.string() + ":" + std::to_string(r.line) + ": value '" + r.value + "' is not a label value");
    }
    if (r.kind == "body") t.bodyLabel = value;
    t.labels.push_back(value);
    t.classes.push_back(int(t.labels.size()) - 1);
    t.priors.push_back(byPhase[0]);
    for (size_t ph = 0; ph < phases.size(); ++ph) t.phasePriors[ph].push_back(byPhase[ph]);
  }
  if (!aorta.empty()) t.aortaLabel = std::stoi(aorta);
  if (t.bodyLabel >= 0) {
    for (int k = 1; k <= 3; ++k)
      if (std::find(t.labels.begin(), t.labels.end(), t.bodyLabel + k) == t.labels.end())
        throw Error(ErrorCode::BadInput, path.string() + ": the body hull needs rows for values " +
                                             std::to_string(t.bodyLabel + 1) + ".." + std::to_string(t.bodyLabel + 3) +
                                             " (subcutaneous fat, wall muscle, vertebral body)");
  }
  if (t.bodyLabel >= 0 && t.tissues.empty())
    throw Error(ErrorCode::BadInput, path.string() + ": a body row needs tissue rows (the palette of its blobs)");
  return t;
}

}  // namespace

GenerationTable GenerationTable::readTsv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorCode::NotFound, path.string() + ": cannot open the generation label table");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  for (size_t i = 0; i < lines.size(); ++i)
    if (!lines[i].empty() && lines[i][0] != '#') {
      if (lines[i].rfind("kind", 0) == 0) return readCtTsv(lines, i, path);
      break;
    }
  GenerationTable t;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const int lineNo = int(i) + 1;
    if (line.empty() || line[0] == '#' || line.rfind("generation_label", 0) == 0) continue;
    std::istringstream ss(line);
    int label, cls, t1cls;
    IntensityPrior p;
    if (!(ss >> label >> cls >> t1cls >> p.meanMu >> p.meanSd >> p.stdMu >> p.stdSd))
      throw Error(ErrorCode::BadInput, path.string() + ":" + std::to_string(lineNo) +
                                           ": expected generation_label gen_class t1_class and four prior numbers");
    t.labels.push_back(label);
    t.classes.push_back(cls);
    t.priors.push_back(p);
  }
  if (t.labels.empty()) throw Error(ErrorCode::BadInput, path.string() + ": no rows");
  return t;
}

GenerationTable GenerationTable::fromImage(const torch::Tensor& labels, const torch::Tensor& image) {
  GenerationTable t;
  auto lab = labels.to(torch::kCPU).to(torch::kLong).flatten();
  auto img = image.to(torch::kCPU).to(torch::kDouble).flatten();
  auto values = std::get<0>(torch::_unique(lab, /*sorted=*/true));
  for (int64_t i = 0; i < values.numel(); ++i) {
    int64_t v = values[i].item<int64_t>();
    auto sel = img.masked_select(lab == v);
    IntensityPrior p;
    p.meanMu = float(sel.mean().item<double>());
    p.stdMu = float(sel.numel() > 1 ? sel.std().item<double>() : 10.0);
    p.meanSd = std::max(10.0f, 0.1f * std::fabs(p.meanMu));  // HU jitter of a class mean
    p.stdSd = 0.3f * p.stdMu;
    t.labels.push_back(int(v));
    t.classes.push_back(int(i));
    t.priors.push_back(p);
  }
  return t;
}

torch::Tensor gaussianBlurAxis(const torch::Tensor& x, int dim, double sigma, bool bandedProduct) {
  if (sigma < 0.3) return x;
  const int64_t radius = int64_t(std::ceil(3 * sigma));
  auto k = torch::arange(-radius, radius + 1, x.options()).div(sigma).pow(2).mul(-0.5).exp();
  k = k / k.sum();
  if (bandedProduct) {
    // out[i] = sum_j x[j] k[j - i + radius], as the convolution's cross-correlation: m[j][i].
    const int64_t n = x.size(dim);
    auto i = torch::arange(n, x.options().dtype(torch::kLong));
    auto tap = i.view({-1, 1}) - i.view({1, -1}) + radius;
    auto m = torch::where(tap.ge(0).logical_and(tap.le(2 * radius)), k.index({tap.clamp(0, 2 * radius)}),
                          torch::zeros({}, x.options()));
    return torch::matmul(x.movedim(dim, -1), m).movedim(-1, dim);
  }
  std::vector<int64_t> shape{1, 1, 1, 1, 1};
  shape[size_t(dim)] = k.numel();
  std::vector<int64_t> pad{0, 0, 0};
  pad[size_t(dim - 2)] = radius;
  return F::conv3d(x, k.view(shape), F::Conv3dFuncOptions().padding(torch::ExpandingArray<3>(pad)));
}

std::vector<int> targetLookup(const std::vector<engine::LabelInfo>& labels, int maxValue) {
  std::vector<int> lut(size_t(maxValue) + 1, 0);
  for (size_t c = 0; c < labels.size(); ++c)
    for (int v : labels[c].sourceValues) {
      if (v < 0 || v > maxValue)
        throw Error(ErrorCode::BadBundle, "label '" + labels[c].name + "': source value " + std::to_string(v) +
                                              " outside 0.." + std::to_string(maxValue));
      lut[size_t(v)] = int(c);
    }
  return lut;
}

namespace {

std::array<int64_t, 6> boxOf(const torch::Tensor& mask) {  // z0, z1, y0, y1, x0, x1
  auto b = engine::nonzeroBox(mask);
  return {b.begin[2], b.end[2], b.begin[1], b.end[1], b.begin[0], b.end[0]};
}

// Synthesis blurs on CUDA by the banded product (Synth.h, gaussianBlurAxis: cuDNN's per-thread
// benchmark cache); on the CPU by the convolution, fewer operations and the numbers of every
// earlier run.
torch::Tensor blurAxis(const torch::Tensor& x, int dim, double sigma) { return gaussianBlurAxis(x, dim, sigma, x.is_cuda()); }

double uniform(std::mt19937_64& rng, double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); }
double normal(std::mt19937_64& rng, double mu, double sd) { return std::normal_distribution<double>(mu, sd)(rng); }

// Each voxel drawn from the Gaussian of its class `cls`: mean[c] + sd[c] * N(0, 1).
torch::Tensor gaussianPerClass(const std::vector<float>& mean, const std::vector<float>& sd, const torch::Tensor& cls,
                               at::Generator& gen) {
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(cls.device());
  auto m = torch::tensor(mean).to(opts.device()), d = torch::tensor(sd).to(opts.device());
  return m.index({cls}) + d.index({cls}) * torch::randn(cls.sizes(), gen, opts);
}

// Rotation about z, y, x (degrees) times scale and shear, acting on (x, y, z) voxel offsets.
std::array<std::array<double, 3>, 3> randomLinear(std::mt19937_64& rng, const SynthOptions& o) {
  auto rot = [](int axis, double deg) {
    double r = deg * M_PI / 180, c = std::cos(r), s = std::sin(r);
    std::array<std::array<double, 3>, 3> m{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
    int a = (axis + 1) % 3, b = (axis + 2) % 3;
    m[size_t(a)][size_t(a)] = c, m[size_t(a)][size_t(b)] = -s, m[size_t(b)][size_t(a)] = s, m[size_t(b)][size_t(b)] = c;
    return m;
  };
  auto mul = [](const auto& A, const auto& B) {
    std::array<std::array<double, 3>, 3> C{};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int k = 0; k < 3; ++k) C[size_t(i)][size_t(j)] += A[size_t(i)][size_t(k)] * B[size_t(k)][size_t(j)];
    return C;
  };
  auto m = mul(mul(rot(0, uniform(rng, -o.maxRotationDeg, o.maxRotationDeg)), rot(1, uniform(rng, -o.maxRotationDeg, o.maxRotationDeg))),
               rot(2, uniform(rng, -o.maxRotationDeg, o.maxRotationDeg)));
  std::array<std::array<double, 3>, 3> sh{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      if (i != j) sh[size_t(i)][size_t(j)] = uniform(rng, -o.maxShear, o.maxShear);
  for (int i = 0; i < 3; ++i) sh[size_t(i)][size_t(i)] = 1 + uniform(rng, -o.maxScale, o.maxScale);
  return mul(m, sh);
}

// grid_sample's normalised coordinates (align_corners) of the voxel positions `pos` [.., 3] (x, y, z).
torch::Tensor normalised(const torch::Tensor& pos, const Subject& s) {
  auto size = torch::tensor({double(s.labels.size(2) - 1), double(s.labels.size(1) - 1), double(s.labels.size(0) - 1)},
                            pos.options());
  return pos / size * 2 - 1;
}

// Maps such as FLARE22's label only the organs: air and the rest of the body are both 0. The
// body is taken as a rounded box (superellipse, exponent 3) around the organs' axial extent, the
// same on every slice, with margins of typical adult abdominal anatomy: 30 mm to each side
// (ribs, muscle, fat), 35 mm in front (wall, fat), 70 mm behind the organs (spine, back
// muscles). Its 0 voxels become, from the outside in: subcutaneous fat (the outer 15 mm, label
// bodyLabel + 1), the muscle of the wall (the next 12 mm, + 2), and the inside (bodyLabel,
// painted as tissue blobs), with a vertebral body (a 20 mm radius column 35 mm behind the
// aorta's mean position, + 3). A 0 outside the hull stays air; organs are never overwritten.
torch::Tensor withBodyHull(const Subject& s, int bodyLabel, int aortaLabel) {
  const auto& fb = s.foregroundBox;  // z0, z1, y0, y1, x0, x1; canonical y runs to posterior
  const auto& sp = s.geometry.spacing;
  const double cx = double(fb[4] + fb[5] - 1) / 2, cy = double(fb[2] + fb[3] - 1) / 2;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(s.labels.device());
  auto dx = torch::arange(s.labels.size(2), opts).sub(cx).view({1, -1});
  auto dy = torch::arange(s.labels.size(1), opts).sub(cy).view({-1, 1});
  // Inside the hull shrunk by `inset` mm on every side.
  auto hull = [&](double inset) {
    const double side = double(fb[5] - fb[4]) / 2 + (30 - inset) / sp[0];
    const double front = cy - double(fb[2]) + (35 - inset) / sp[1], back = double(fb[3]) - cy + (70 - inset) / sp[1];
    auto y = torch::where(dy < 0, dy / front, dy / back).abs().pow(3);
    return ((dx / side).abs().pow(3) + y <= 1).unsqueeze(0);  // [1, y, x], every slice
  };
  auto region = torch::full(s.labels.sizes(), 0, s.labels.options());
  region.masked_fill_(hull(0), bodyLabel + 1).masked_fill_(hull(15), bodyLabel + 2).masked_fill_(hull(27), bodyLabel);
  auto aorta = (s.labels == aortaLabel).nonzero();  // [n, 3] (z, y, x)
  if (aorta.size(0) > 0) {
    auto c = aorta.to(torch::kFloat).mean(0);
    auto vx = (dx + cx - c[2]).mul(sp[0]), vy = (dy + cy - c[1]).mul(sp[1]).sub(35);
    region.masked_fill_((vx * vx + vy * vy <= 400).unsqueeze(0), bodyLabel + 3);
  }
  return torch::where(s.labels == 0, region, s.labels);
}

// Centroid (world mm) of `label` in a subject; nullopt when it has fewer than 10 voxels.
std::optional<Vec3> centroidOf(const Subject& s, int label) {
  auto idx = (s.labels == label).nonzero();  // [n, 3] (z, y, x)
  if (idx.size(0) < 10) return std::nullopt;
  auto m = idx.to(torch::kDouble).mean(0).to(torch::kCPU);
  return s.geometry.indexToWorld({m[2].item<double>(), m[1].item<double>(), m[0].item<double>()});
}

// A geometry's index -> world affine (Geometry::affine) as a 4 x 4 double tensor.
torch::Tensor affineTensor(const engine::Geometry& g) {
  const engine::Affine a = g.affine();
  auto t = torch::empty({4, 4}, torch::kDouble);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 4; ++c) t[r][c] = a[size_t(r)][size_t(c)];
  return t;
}

// The body context of a fully labelled subject (TotalSegmentator, training/ct/totalseg-context.py)
// moved onto an organ-only map: per world axis a scale and a shift fitted by least squares to the
// centroids of the organs both have (FLARE22 values 1..13), then each voxel of the hull's inside
// (bodyLabel) takes the context's value there when that is a context class (bodyLabel + 10 and
// above: bone, muscle, bowel, lung, fluid, blood pool). Organs, the hull's shell and spine stay;
// what the context leaves is painted as blobs. A per-axis fit, not a full affine: 13 centroids
// would fit 12 affine parameters almost exactly, and the two bodies differ by more than that.
torch::Tensor withContext(const Subject& s, const Subject& context, int bodyLabel) {
  std::vector<std::array<Vec3, 2>> pairs;
  for (int organ = 1; organ <= 13; ++organ) {
    auto a = centroidOf(s, organ), b = centroidOf(context, organ);
    if (a && b) pairs.push_back({*a, *b});
  }
  if (pairs.size() < 4) return s.labels;  // too few to align by: the blobs alone
  Vec3 scale{}, shift{};
  for (int ax = 0; ax < 3; ++ax) {  // ordinary least squares of b on a, per axis
    double n = double(pairs.size()), sa = 0, sb = 0, saa = 0, sab = 0;
    for (const auto& p : pairs) {
      const double a = p[0][size_t(ax)], b = p[1][size_t(ax)];
      sa += a, sb += b, saa += a * a, sab += a * b;
    }
    const double var = saa - sa * sa / n;
    scale[size_t(ax)] = var > 1e-6 ? std::clamp((sab - sa * sb / n) / var, 0.7, 1.4) : 1.0;
    shift[size_t(ax)] = (sb - scale[size_t(ax)] * sa) / n;
  }
  // Voxel (x, y, z) of s -> voxel of the context: context^-1 * (per-axis fit) * s, homogeneous.
  auto fit = torch::eye(4, torch::kDouble);
  for (int ax = 0; ax < 3; ++ax) fit[ax][ax] = scale[size_t(ax)], fit[ax][3] = shift[size_t(ax)];
  auto map = affineTensor(context.geometry).inverse().matmul(fit).matmul(affineTensor(s.geometry));
  auto K = map.slice(0, 0, 3).slice(1, 0, 3), t = map.slice(0, 0, 3).select(1, 3);
  auto inside = (s.labels == bodyLabel).nonzero();  // [n, 3] (z, y, x)
  if (inside.size(0) == 0) return s.labels;
  auto ijk = inside.flip({1}).to(torch::kDouble);     // (x, y, z)
  auto dev = s.labels.device();
  auto q = (ijk.matmul(K.t().to(dev)) + t.to(dev)).round().to(torch::kLong);  // context (x, y, z)
  const auto& cl = context.labels;
  auto ok = (q.select(1, 0) >= 0) & (q.select(1, 0) < cl.size(2)) & (q.select(1, 1) >= 0) & (q.select(1, 1) < cl.size(1)) &
            (q.select(1, 2) >= 0) & (q.select(1, 2) < cl.size(0));
  auto flat = (q.select(1, 2).clamp(0, cl.size(0) - 1) * cl.size(1) + q.select(1, 1).clamp(0, cl.size(1) - 1)) * cl.size(2) +
              q.select(1, 0).clamp(0, cl.size(2) - 1);
  auto value = cl.flatten().index({flat});
  auto take = ok & (value >= bodyLabel + 10);
  auto out = s.labels.clone();
  auto at = inside.index({take});
  out.index_put_({at.select(1, 0), at.select(1, 1), at.select(1, 2)}, value.index({take}));
  return out;
}

}  // namespace

Subject loadSubject(const std::filesystem::path& labelsPath, const std::filesystem::path& imagePath, const Vec3& spacing,
                    const std::vector<int>& targetLut, torch::Device device) {
  Subject s;
  s.name = labelsPath.filename().string();
  engine::Volume lab = engine::readNifti(labelsPath);
  auto ro = engine::canonicalReorientation(lab.geometry);
  s.geometry = ro.apply(lab.geometry);
  torch::Tensor labels = engine::reorient(lab.data.to(torch::kFloat), ro).round().to(torch::kInt);
  torch::Tensor image;
  if (!imagePath.empty()) {
    engine::Volume img = engine::readNifti(imagePath);
    if (img.geometry.size != lab.geometry.size)
      throw Error(ErrorCode::BadInput, imagePath.string() + ": grid differs from its label map " + labelsPath.string());
    image = engine::reorient(img.data.to(torch::kFloat), ro).contiguous();
  }
  bool resample = false;
  engine::Vec3 step{};
  for (int a = 0; a < 3; ++a) {
    step[size_t(a)] = spacing[size_t(a)] / s.geometry.spacing[size_t(a)];
    resample |= std::fabs(step[size_t(a)] - 1) > 1e-3;
  }
  if (resample) {
    auto size = engine::resampledSize(s.geometry.size, s.geometry.spacing, spacing);
    labels = engine::resample(labels.to(torch::kFloat), size, step, engine::Interpolation::Nearest).round().to(torch::kInt);
    if (image.defined()) image = engine::resample(image, size, step, engine::Interpolation::Linear);
    s.geometry.size = size;
    s.geometry.spacing = spacing;
  }
  auto lut = torch::tensor(std::vector<int64_t>(targetLut.begin(), targetLut.end()));
  auto target = lut.index({labels.clamp(0, int64_t(targetLut.size()) - 1).to(torch::kLong)});
  s.foregroundBox = boxOf(target > 0);
  auto present = std::get<0>(torch::_unique(target, /*sorted=*/true));
  for (int64_t i = 0; i < present.numel(); ++i)
    if (int64_t c = present[i].item<int64_t>(); c > 0) s.targetClasses.push_back(c);
  s.labels = labels.to(torch::kShort).contiguous().to(device);
  if (image.defined()) s.image = image.to(device);
  return s;
}

Synthesizer::Synthesizer(std::vector<Subject> subjects, GenerationTable table, std::vector<int> targetLut,
                         engine::PreprocessingSpec preprocessing, SynthOptions options, std::vector<Subject> context)
    : subjects_(std::move(subjects)), table_(std::move(table)), preprocessing_(preprocessing), options_(options) {
  if (subjects_.empty()) throw Error(ErrorCode::InvalidArgument, "synthesis needs at least one label map");
  auto device = subjects_[0].labels.device();
  int maxLabel = int(targetLut.size()) - 1;
  for (int l : table_.labels) maxLabel = std::max(maxLabel, l);
  std::vector<int64_t> cls(size_t(maxLabel) + 1, 0), tgt(size_t(maxLabel) + 1, 0);
  for (size_t i = 0; i < table_.labels.size(); ++i) cls[size_t(table_.labels[i])] = table_.classes[i];
  for (size_t v = 0; v < targetLut.size(); ++v) tgt[v] = targetLut[v];
  classOf_ = torch::tensor(cls).to(device);
  targetOf_ = torch::tensor(tgt).to(device);
  if (table_.bodyLabel >= 0)
    for (size_t i = 0; i < subjects_.size(); ++i) {
      auto& s = subjects_[i];
      s.labels = withBodyHull(s, table_.bodyLabel, table_.aortaLabel);
      if (!context.empty()) s.labels = withContext(s, context[i % context.size()], table_.bodyLabel);
    }
  for (const auto& s : subjects_) labelsAsFloat_.push_back(s.labels.to(torch::kFloat).unsqueeze(0).unsqueeze(0));
}

// One image on the positions `grid` ([1, z, y, x, 3], normalised); fills `target` [z, y, x].
// Hounsfield intensities of one contrast phase: each generation label a Gaussian drawn around
// the table's prior; the body label painted as 3..maxBodyBlobs smooth random blobs, each a tissue
// drawn from the palette by weight (SynthMorph-style), or one Gaussian of its own prior when
// maxBodyBlobs is 0.
torch::Tensor Synthesizer::ctIntensities(const torch::Tensor& labels, int phase, Draw& draw) const {
  auto& rng = draw.rng;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(labels.device());
  const int n = table_.numClasses();
  // At least three blobs where allowed: one blob of one tissue fills the whole inside.
  const int most = options_.maxBodyBlobs, fewest = std::min(3, most);
  const int blobs = table_.bodyLabel >= 0 && most > 0 ? fewest + int(rng() % uint64_t(most - fewest + 1)) : 0;
  std::vector<float> mean(size_t(n + blobs), 0), sd(size_t(n + blobs), 1);
  auto drawPrior = [&](size_t at, const IntensityPrior& p) {
    mean[at] = float(normal(rng, p.meanMu, p.meanSd));
    sd[at] = float(std::max(1.0, normal(rng, p.stdMu, p.stdSd)));
  };
  const auto& priors = table_.phasePriors.at(size_t(phase));
  for (size_t i = 0; i < table_.labels.size(); ++i) drawPrior(size_t(table_.classes[i]), priors[i]);
  std::vector<double> weights;
  for (const auto& t : table_.tissues) weights.push_back(t.weight);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  for (int k = 0; k < blobs; ++k) drawPrior(size_t(n + k), table_.tissues[pick(rng)].byPhase[size_t(phase)]);
  auto cls = classOf_.index({labels});
  if (blobs > 0) {
    const int64_t g = 3 + int64_t(rng() % 6);  // blob scale: a 3..8 coarse grid over the region
    auto field = F::interpolate(torch::randn({1, blobs, g, g, g}, draw.tensors, opts),
                                F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{labels.size(0), labels.size(1), labels.size(2)})
                                    .mode(torch::kTrilinear)
                                    .align_corners(true));
    cls = torch::where(labels == table_.bodyLabel, field[0].argmax(0) + n, cls);
  }
  return gaussianPerClass(mean, sd, cls, draw.tensors);
}

torch::Tensor Synthesizer::one(size_t subject, const torch::Tensor& grid, Contrast contrast, int phase,
                               const Vec3& acquisition, Draw& draw, torch::Tensor& target, bool raw) const {
  auto& rng = draw.rng;
  const auto opts = grid.options();
  const Subject& s = subjects_[subject];
  auto labels = torch::grid_sampler(labelsAsFloat_[subject], grid, /*nearest*/ 1,
                                    /*zeros*/ 0, /*align_corners*/ true)[0][0]
                    .round()
                    .to(torch::kLong)
                    .clamp(0, classOf_.size(0) - 1);
  target = targetOf_.index({labels});
  const bool ct = preprocessing_.normalization == engine::Normalization::CT;
  draw.lap("labels");

  torch::Tensor img;
  if (contrast == Contrast::Real && s.image.defined()) {
    img = torch::grid_sampler(s.image.unsqueeze(0).unsqueeze(0), grid, 0, /*border*/ 1, true)[0][0];
    img = img * uniform(rng, 0.9, 1.1) + uniform(rng, -20, 20);
  } else if (!table_.phases.empty()) {  // a CT table: HU priors (no random contrast in HU)
    img = ctIntensities(labels, phase, draw);
  } else {
    const int n = table_.numClasses();
    std::vector<float> mean(size_t(n), 0), sd(size_t(n), 1);
    for (size_t i = 0; i < table_.labels.size(); ++i) {
      size_t c = size_t(table_.classes[i]);
      const auto& p = table_.priors[i];
      if (contrast == Contrast::Random) {
        mean[c] = float(uniform(rng, 0, 255)), sd[c] = float(uniform(rng, 1, 25));
      } else {
        double m = normal(rng, p.meanMu, p.meanSd);
        mean[c] = float(contrast == Contrast::Inverted ? 255 - m : m);
        sd[c] = float(std::max(1.0, normal(rng, p.stdMu, p.stdSd)));
      }
    }
    auto cls = classOf_.index({labels});
    img = gaussianPerClass(mean, sd, cls, draw.tensors);
  }
  img = img.unsqueeze(0).unsqueeze(0);  // [1, 1, z, y, x]
  draw.lap("intensities");

  // Bias field: a smooth multiplicative field (exp of a coarse Gaussian grid, trilinear).
  if (!ct) {
    double bstd = uniform(rng, 0, options_.maxBiasStd);
    auto coarse = torch::randn({1, 1, 4, 4, 4}, draw.tensors, opts) * bstd;
    auto field = F::interpolate(coarse, F::InterpolateFuncOptions()
                                            .size(std::vector<int64_t>{img.size(2), img.size(3), img.size(4)})
                                            .mode(torch::kTrilinear)
                                            .align_corners(true));
    img = img * field.exp();
  }
  draw.lap("bias field");
  // Resolution: blur to the acquisition's slice profile, sample at its spacing, back to the grid.
  const auto& sp = s.geometry.spacing;
  bool lowRes = false;
  for (int a = 0; a < 3; ++a) {
    double ratio = acquisition[size_t(a)] / sp[size_t(a)];
    if (ratio > 1.05) {
      img = blurAxis(img, 4 - a, 0.4247 * ratio);  // FWHM = slice thickness
      lowRes = true;
    }
  }
  if (lowRes) {
    std::vector<int64_t> full{img.size(2), img.size(3), img.size(4)}, low(3);
    for (int d = 0; d < 3; ++d)
      low[size_t(d)] = std::max<int64_t>(2, int64_t(std::lround(double(full[size_t(d)]) * sp[size_t(2 - d)] / acquisition[size_t(2 - d)])));
    auto o = F::InterpolateFuncOptions().mode(torch::kTrilinear).align_corners(true);
    img = F::interpolate(F::interpolate(img, o.size(low)), F::InterpolateFuncOptions().size(full).mode(torch::kTrilinear).align_corners(true));
  }
  draw.lap("resolution");
  if (ct) {
    // The scanner's point spread (partial volume at organ edges), then noise as a reconstruction
    // kernel leaves it: spatially correlated, of a standard deviation in HU.
    const double psf = uniform(rng, options_.minBlurSigma, options_.maxBlurSigma);
    for (int dim = 2; dim <= 4; ++dim) img = blurAxis(img, dim, psf);
    auto noise = torch::randn(img.sizes(), draw.tensors, img.options());
    const double grain = uniform(rng, 0, 1);
    for (int dim = 2; dim <= 4; ++dim) noise = blurAxis(noise, dim, grain);
    img = img + noise / noise.std().clamp_min(1e-6) * uniform(rng, options_.minCtNoiseHu, options_.maxCtNoiseHu);
  } else {
    img = img + torch::randn(img.sizes(), draw.tensors, img.options()) * uniform(rng, 0, options_.maxNoiseStd);
  }
  draw.lap("noise");

  if (ct && raw) return img[0];
  if (ct) {
    engine::PreprocessingSpec p = preprocessing_;
    img = img.clamp(p.clipLow, p.clipHigh).sub(p.mean).div(std::max(p.std, 1e-8));
  } else {
    // Min-max to [0, 1], random gamma, then z-score as at inference.
    img = img.clamp_min(0);
    img = img / img.max().clamp_min(1e-6);
    img = img.pow(std::exp(normal(rng, 0, options_.gammaStd)));
    img = (img - img.mean()) / img.std(/*unbiased=*/false).clamp_min(1e-6);
  }
  draw.lap("normalisation");
  return img[0];  // [1, z, y, x]
}

// Where the patch starts in the synthesised region ([z, y, x] target): centred on a voxel of a
// uniformly drawn target class with probability classCentredProbability, else anywhere. The patch
// may reach past the region (it is padded), as nnU-Net's may reach past the image.
std::array<int64_t, 3> Synthesizer::patchOrigin(const Subject& s, const torch::Tensor& target,
                                                const std::array<int64_t, 3>& size, std::mt19937_64& rng) const {
  std::array<int64_t, 3> extent{target.size(2), target.size(1), target.size(0)};  // x, y, z
  std::array<int64_t, 3> centre{};
  bool placed = false;
  if (!s.targetClasses.empty() && uniform(rng, 0, 1) < options_.classCentredProbability) {
    int64_t cls = s.targetClasses[size_t(rng() % s.targetClasses.size())];
    auto voxels = (target == cls).flatten().nonzero();  // a transform can move a tiny class out
    if (voxels.size(0) > 0) {
      int64_t flat = voxels[int64_t(rng() % uint64_t(voxels.size(0)))][0].item<int64_t>();
      centre = {flat % extent[0], (flat / extent[0]) % extent[1], flat / (extent[0] * extent[1])};
      placed = true;
    }
  }
  if (!placed)
    for (int a = 0; a < 3; ++a) centre[size_t(a)] = int64_t(rng() % uint64_t(extent[size_t(a)]));
  std::array<int64_t, 3> origin{};
  for (int a = 0; a < 3; ++a) origin[size_t(a)] = centre[size_t(a)] - size[size_t(a)] / 2;
  return origin;
}

namespace {
// work(i) for every i in [0, n), on `threads` threads. On CUDA each thread queues its kernels on a
// stream of its own from the pool, so that one sample's host waits (nonzero, item) do not hold
// up the others' (a prefetch thread sharing the caller's stream made training slower, session
// 3), and waits for that stream before it ends: what the caller gets back is computed.
void forEachOnOwnStream(int n, int threads, torch::Device device, const std::function<void(int)>& work) {
  std::atomic<int> next{0};
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto worker = [&](int w) {
    try {
      std::optional<c10::StreamGuard> own;
      if (device.is_cuda()) own.emplace(c10::impl::VirtualGuardImpl(device.type()).getStreamFromGlobalPool(device));
      for (int i = next++; i < n; i = next++) work(i);
      if (own) own->current_stream().synchronize();
    } catch (...) {
      errors[size_t(w)] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int w = 0; w < threads; ++w) pool.emplace_back(worker, w);
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// The [.., z, y, x] block of `size` (x, y, z) at `origin`, zero where it leaves `t`.
torch::Tensor cropPadded(const torch::Tensor& t, const std::array<int64_t, 3>& origin, const std::array<int64_t, 3>& size) {
  const int64_t nd = t.dim();
  std::vector<int64_t> pad;  // F::pad order: last dim first, (before, after)
  torch::Tensor x = t;
  for (int a = 0; a < 3; ++a) {
    const int64_t dim = nd - 1 - a, n = t.size(dim), lo = origin[size_t(a)], hi = lo + size[size_t(a)];
    x = x.slice(dim, std::max<int64_t>(0, lo), std::min(n, hi));
    pad.push_back(std::max<int64_t>(0, -lo));
    pad.push_back(std::max<int64_t>(0, hi - n));
  }
  bool any = false;
  for (int64_t p : pad) any |= p > 0;
  if (!any) return x.contiguous();
  if (x.scalar_type() == torch::kLong) return F::pad(x.to(torch::kFloat), F::PadFuncOptions(pad)).to(torch::kLong);
  return F::pad(x, F::PadFuncOptions(pad));
}
}  // namespace

Synthesizer::Draw::Draw(uint64_t seed, torch::Device device, StageSeconds* stageSeconds)
    : rng(seed), tensors(at::globalContext().defaultGenerator(device).clone()), clock_(stageSeconds, device) {
  // The same numbers as torch::manual_seed(seed) gave the global generator before samples had
  // generators of their own: runs that resume across that change keep their data stream.
  std::lock_guard<std::mutex> lock(tensors.mutex());
  tensors.set_current_seed(seed);
}

std::pair<torch::Tensor, torch::Tensor> Synthesizer::samplePatch(const std::array<int64_t, 3>& size, uint64_t seed,
                                                                 int b, int subject) const {
  const size_t index = subject >= 0 ? size_t(subject) : size_t((seed + uint64_t(b)) % subjects_.size());
  const Subject& s = subjects_[index];
  Draw draw(seed * 1000003ULL + uint64_t(b), s.labels.device(), stageSeconds_);
  auto& rng = draw.rng;
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(s.labels.device());

  // The region: the foreground box plus a margin, transformed about its centre. Offsets of the
  // output grid in voxels (x, y, z).
  const auto& fb = s.foregroundBox;
  const int64_t m = options_.regionMargin;
  const std::array<int64_t, 3> region{fb[5] - fb[4] + 2 * m, fb[3] - fb[2] + 2 * m, fb[1] - fb[0] + 2 * m};
  Vec3 centre{double(fb[4] + fb[5] - 1) / 2, double(fb[2] + fb[3] - 1) / 2, double(fb[0] + fb[1] - 1) / 2};
  auto lin = options_.spatial ? randomLinear(rng, options_)
                              : std::array<std::array<double, 3>, 3>{{{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}};
  auto axis = [&](int64_t n) { return torch::arange(n, opts) - double(n - 1) / 2; };
  auto zz = axis(region[2]).view({-1, 1, 1, 1}), yy = axis(region[1]).view({1, -1, 1, 1}),
       xx = axis(region[0]).view({1, 1, -1, 1});
  auto mat = torch::empty({3, 3}, torch::kFloat);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) mat[i][j] = float(lin[size_t(i)][size_t(j)]);
  mat = mat.to(opts.device());
  // pos[.., i] = sum_j lin[i][j] * offset_j + centre_i, offsets ordered (x, y, z).
  auto pos = xx * mat.select(1, 0) + yy * mat.select(1, 1) + zz * mat.select(1, 2) +
             torch::tensor({centre[0], centre[1], centre[2]}, opts);
  if (options_.spatial && options_.maxNonlinearStd > 0) {
    double nstd = uniform(rng, 0, options_.maxNonlinearStd);
    auto coarse = torch::randn({1, 3, 6, 6, 6}, draw.tensors, opts) * nstd;
    auto disp = F::interpolate(coarse, F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{region[2], region[1], region[0]})
                                           .mode(torch::kTrilinear)
                                           .align_corners(true));
    pos = pos + disp[0].permute({1, 2, 3, 0});
  }
  auto grid = normalised(pos, s).unsqueeze(0);
  draw.lap("spatial transform");

  // Contrast and acquisition resolution of this sample.
  double u = uniform(rng, 0, 1);
  Contrast c = u < options_.realProbability            ? Contrast::Real
               : u < options_.realProbability + options_.priorProbability ? Contrast::Prior
                                                                          : Contrast::Random;
  Vec3 acq = s.geometry.spacing;
  if (uniform(rng, 0, 1) < options_.resolutionProbability) {
    int thick = int(uniform(rng, 0, 3));
    acq[size_t(thick)] = uniform(rng, s.geometry.spacing[size_t(thick)], options_.maxSliceThickness);
  }
  int phase = -1;
  if (!table_.phases.empty())
    phase = options_.phases.empty() ? int(rng() % table_.phases.size())
                                    : options_.phases[size_t(rng() % options_.phases.size())];
  torch::Tensor target;
  auto image = one(index, grid, c, phase, acq, draw, target, /*raw=*/false);  // normalised over the whole region
  auto origin = patchOrigin(s, target, size, rng);
  draw.lap("patch centre");
  std::pair<torch::Tensor, torch::Tensor> patch{cropPadded(image, origin, size), cropPadded(target, origin, size)};
  draw.lap("crop");
  return patch;
}

SynthBatch Synthesizer::sample(const std::array<int64_t, 3>& size, int batch, uint64_t seed, int subject) const {
  std::vector<torch::Tensor> images(static_cast<size_t>(batch)), targets(static_cast<size_t>(batch));
  auto make = [&](int b) { std::tie(images[size_t(b)], targets[size_t(b)]) = samplePatch(size, seed, b, subject); };
  const torch::Device device = subjects_.front().labels.device();
  // On CUDA even one thread works on a stream of its own: its host waits then wait for its own
  // kernels only, not for the training step still running on the caller's stream, so the batch
  // is made while that step runs.
  if (!device.is_cuda() && (threads_ <= 1 || batch <= 1)) {
    for (int b = 0; b < batch; ++b) make(b);
  } else {
    forEachOnOwnStream(batch, std::max(1, std::min(threads_, batch)), device, make);
    // The samples' memory came from the workers' streams: the caching allocator must not hand it
    // out again before this thread's stream has read it.
    if (device.is_cuda()) {
      const auto mine = c10::impl::VirtualGuardImpl(device.type()).getStream(device);
      for (auto& t : images) t.record_stream(mine);
      for (auto& t : targets) t.record_stream(mine);
    }
  }
  return {torch::stack(images), torch::stack(targets)};
}

SynthBatch Synthesizer::whole(int subject, Contrast contrast, const Vec3& acquisition, uint64_t seed, int64_t margin,
                              int phase, bool raw) const {
  if (!table_.phases.empty() && phase < 0) phase = options_.phases.empty() ? 0 : options_.phases[0];
  if (!table_.phases.empty() && phase >= int(table_.phases.size()))
    throw Error(ErrorCode::InvalidArgument, "contrast phase " + std::to_string(phase) + " is not in the CT table");
  const Subject& s = subjects_.at(size_t(subject));
  Draw draw(seed, s.labels.device());
  const auto opts = torch::TensorOptions().dtype(torch::kFloat).device(s.labels.device());
  const auto& fb = s.foregroundBox;
  auto range = [&](int64_t lo, int64_t hi, int64_t n) {
    return torch::arange(std::max<int64_t>(0, lo - margin), std::min(n, hi + margin), opts);
  };
  auto z = range(fb[0], fb[1], s.labels.size(0)), y = range(fb[2], fb[3], s.labels.size(1)),
       x = range(fb[4], fb[5], s.labels.size(2));
  auto pos = torch::stack(torch::meshgrid({z, y, x}, "ij"), 0);  // [3(z, y, x), z, y, x]
  pos = torch::stack({pos[2], pos[1], pos[0]}, -1);         // (x, y, z) last
  auto grid = normalised(pos, s).unsqueeze(0);
  torch::Tensor target;
  auto img = one(size_t(subject), grid, contrast, phase, acquisition, draw, target, raw);
  return {img.unsqueeze(0), target.unsqueeze(0)};
}

}  // namespace segnode::training
