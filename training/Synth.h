#pragma once
// SynthSeg-style image synthesis from label maps (`segnode-distill synth`, and the on-the-fly data
// of `train` and `distill`). Everything runs on the device of the subject tensors (CPU or CUDA),
// so training never waits for a CPU data loader.
//
// One sample = random spatial transform (affine + smooth non-linear displacement) applied to the
// label map -> per-class Gaussian intensities (random contrast, or drawn around the T1 priors of
// SynthSeg, or the subject's real image for CT) -> bias field -> random resolution / slice
// thickness (blur, down- and up-sampling) -> noise -> gamma -> normalisation as at inference.
// Deterministic for a given seed and sample index.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "engine/BundleSpec.h"
#include "engine/Volume.h"
#include "training/PhaseClock.h"

namespace segnode::training {

// Per generation label: the class whose Gaussian it shares, and the prior of that Gaussian.
struct IntensityPrior {
  float meanMu = 0, meanSd = 0, stdMu = 0, stdSd = 0;
};
// A tissue the CT synthesiser paints into the unlabelled body as random smooth blobs.
struct BodyTissue {
  std::string name;
  double weight = 1;                   // share of blobs drawn as this tissue
  std::vector<IntensityPrior> byPhase;  // per phase of the table
};
struct GenerationTable {
  std::vector<int> labels;     // generation label values
  std::vector<int> classes;    // class per label (labels sharing a class share the Gaussian)
  std::vector<IntensityPrior> priors;  // per label (T1 prior of its class)
  // CT tables (training/ct/*.tsv): Hounsfield priors per contrast phase. Empty `phases`: not CT.
  std::vector<std::string> phases;                     // e.g. noncontrast, portal_venous, arterial
  std::vector<std::vector<IntensityPrior>> phasePriors;  // [phase][label index]
  std::vector<BodyTissue> tissues;  // the palette of the unlabelled body
  int bodyLabel = -1;   // generation label of unlabelled voxels inside the body hull (+1..+3: its shell
                        // and spine, Synth.cpp withBodyHull)
  int aortaLabel = -1;  // the row named "aorta": where the spine is placed
  int numClasses() const;
  int phaseIndex(const std::string& name) const;  // throws, naming the phases the table has
  // SynthSeg's table (synthseg_generation_label_table.tsv), or a CT table (its header row starts
  // with "kind"). Errors name the file and line.
  static GenerationTable readTsv(const std::filesystem::path& path);
  // Every value in `labels` its own class; priors from the image's per-label statistics (CT).
  static GenerationTable fromImage(const torch::Tensor& labels, const torch::Tensor& image);
};

enum class Contrast {
  Random,   // per class: mean ~ U(0, 255), std ~ U(1, 25) (SynthSeg's domain randomisation)
  Prior,    // per class: mean ~ N(prior), std ~ N(prior) (T1-like for the brain table; for a CT
            // table, the priors of one contrast phase)
  Inverted, // T2-like: the prior's means reflected (255 - mean); validation only
  Real,     // the subject's own image (CT), with intensity augmentation
};

struct SynthOptions {
  // Probability of each contrast in training (the rest: Random).
  double priorProbability = 0.5, realProbability = 0;
  double maxRotationDeg = 15, maxScale = 0.15, maxShear = 0.012;
  double maxNonlinearStd = 3;      // voxels, smooth displacement
  double maxBiasStd = 0.5;         // log-intensity
  double resolutionProbability = 0.5;
  double maxSliceThickness = 2.5;  // mm, training; validation uses thicker slices
  double maxNoiseStd = 8;          // on the 0..255 scale (HU for CT)
  double gammaStd = 0.25;
  bool spatial = true;             // false: identity transform (validation pairs)
  // Patches are cut from an image synthesised (and normalised) over the whole foreground box plus
  // this margin, as the validation pairs and, at inference, the cropped volume are normalised.
  int64_t regionMargin = 8;
  // CT tables: the phases training draws from (indices into GenerationTable::phases; empty: all),
  // the most tissue blobs painted into the unlabelled body (1: one tissue for all of it, the
  // ablation's plain arm), and the scanner's in-plane and through-plane blur (sigma, voxels).
  std::vector<int> phases;
  int maxBodyBlobs = 10;
  double minBlurSigma = 0.3, maxBlurSigma = 0.8;
  double minCtNoiseHu = 3, maxCtNoiseHu = 25;  // noise SD of soft to sharp kernels at 3 mm
  // nnU-Net's oversampling: this share of patches is centred on a voxel of a target class drawn
  // uniformly from those the subject has, so that small structures are seen as often as large.
  double classCentredProbability = 1.0 / 3;
};

// A label map (and optionally its image) at the plan's spacing, canonical orientation.
struct Subject {
  std::string name;
  torch::Tensor labels;  // [z, y, x] int16 (generation label values), on the device
  torch::Tensor image;   // [z, y, x] float32 (HU) or undefined
  engine::Geometry geometry;
  std::array<int64_t, 6> foregroundBox{};  // z0, z1, y0, y1, x0, x1 of target labels > 0 (end exclusive)
  std::vector<int64_t> targetClasses;      // target classes > 0 present in the map
};

// Reads a label map (and image) NIfTI, reorients to canonical, resamples to `spacing` if needed
// (nearest for labels, linear for the image) and moves it to `device`.
Subject loadSubject(const std::filesystem::path& labels, const std::filesystem::path& image,
                    const engine::Vec3& spacing, const std::vector<int>& targetLut, torch::Device device);

// Generation label value -> network class index (0 when not a target), from the bundle's label
// table (each label's source_values). Size: max source value + 1.
std::vector<int> targetLookup(const std::vector<engine::LabelInfo>& labels, int maxValue = 1024);

struct SynthBatch {
  torch::Tensor image;   // [B, 1, z, y, x] float32, normalised as the bundle's preprocessing
  torch::Tensor target;  // [B, z, y, x] int64 class indices
};

class Synthesizer {
 public:
  // `context` (CT tables with a body hull): fully labelled subjects whose body context (bone,
  // muscle, bowel, lung, ...) is moved into the hull of subject i from context[i % n] (Synth.cpp,
  // withContext); empty: the hull's inside is blobs alone.
  Synthesizer(std::vector<Subject> subjects, GenerationTable table, std::vector<int> targetLut,
              engine::PreprocessingSpec preprocessing, SynthOptions options, std::vector<Subject> context = {});

  // `size` is (x, y, z). Sample i of the batch uses subject (seed + i) mod n unless `subject` >= 0.
  // Each sample is synthesised over the subject's foreground box (+ margin) under a random spatial
  // transform, normalised there, and the patch is cut from it (class-centred or uniform).
  // A sample depends on (seed, its index) alone, never on the thread that makes it.
  SynthBatch sample(const std::array<int64_t, 3>& size, int batch, uint64_t seed, int subject = -1) const;
  // Samples of one batch made at once, each on its own thread and (CUDA) stream: one sample is a
  // few hundred small kernels and several host waits, so one thread leaves the GPU mostly idle.
  // On CUDA even one thread has a stream of its own, so that the batch is made while the caller's
  // stream still runs the last training step.
  void setThreads(int n) { threads_ = std::max(1, n); }
  int threads() const { return threads_; }
  // A copy that makes its batches on `n` threads (the subjects' tensors are shared, not copied).
  Synthesizer withThreads(int n) const {
    Synthesizer copy = *this;
    copy.setThreads(n);
    return copy;
  }
  // Where a sample's time goes, for the batch probe: seconds per stage, in the order the stages
  // run. A copy made by withStageSeconds(&into) waits for its device after every stage of every
  // sample and adds the stage's seconds to `into` (one thread: the stages of one sample only);
  // training never makes one, and the samples are the same either way.
  using StageSeconds = PhaseClock::Seconds;
  Synthesizer withStageSeconds(StageSeconds* into) const {
    Synthesizer copy = withThreads(1);
    copy.stageSeconds_ = into;
    return copy;
  }
  // The whole foreground box (+margin) of one subject, no spatial transform, with a fixed contrast
  // and slice thickness (x, y, z in mm): validation pairs. wholeSeed gives pair i of a set made
  // with base seed S its seed (segnode-distill synth and the training's validation curves agree).
  static uint64_t wholeSeed(uint64_t base, size_t subject) { return base + subject * 17; }
  // `phase`: a CT table's phase (-1: the first training phase); `raw`: CT images in HU, not
  // normalised (written pairs, the plan's intensity statistics).
  SynthBatch whole(int subject, Contrast contrast, const engine::Vec3& acquisition, uint64_t seed,
                   int64_t margin = 8, int phase = -1, bool raw = false) const;
  const std::vector<Subject>& subjects() const { return subjects_; }
  const GenerationTable& table() const { return table_; }

 private:
  // The randomness of one sample: host draws (scalars) and a generator of the subjects' device
  // (tensors), both seeded from the sample's seed, so a sample is the same on any thread.
  // `lap` ends a stage where stage seconds are asked for (withStageSeconds), else does nothing.
  struct Draw {
    Draw(uint64_t seed, torch::Device device, StageSeconds* stageSeconds = nullptr);
    void lap(const char* stage) { clock_.lap(stage); }
    std::mt19937_64 rng;
    at::Generator tensors;

   private:
    PhaseClock clock_;
  };
  std::pair<torch::Tensor, torch::Tensor> samplePatch(const std::array<int64_t, 3>& size, uint64_t seed, int b,
                                                      int subject) const;  // image [1, z, y, x], target [z, y, x]
  torch::Tensor one(size_t subject, const torch::Tensor& grid, Contrast contrast, int phase,
                    const engine::Vec3& acquisition, Draw& draw, torch::Tensor& target, bool raw) const;
  torch::Tensor ctIntensities(const torch::Tensor& labels, int phase, Draw& draw) const;
  std::array<int64_t, 3> patchOrigin(const Subject& s, const torch::Tensor& target, const std::array<int64_t, 3>& size,
                                     std::mt19937_64& rng) const;
  std::vector<Subject> subjects_;
  std::vector<torch::Tensor> labelsAsFloat_;  // per subject [1, 1, z, y, x]: grid_sample's input, made once
  GenerationTable table_;
  torch::Tensor classOf_;    // generation label -> class, int64, on device
  torch::Tensor targetOf_;   // generation label -> target class, int64, on device
  engine::PreprocessingSpec preprocessing_;
  SynthOptions options_;
  int threads_ = 1;
  StageSeconds* stageSeconds_ = nullptr;  // withStageSeconds: the probe's stage timing
};

// A Gaussian of `sigma` voxels (none under 0.3) along dim `dim` (2, 3 or 4 of [N, C, z, y, x]),
// zero beyond the edges: a convolution, or the product with the kernel's banded matrix (equal to
// rounding). Synthesis takes the product on CUDA: training has cuDNN measure its algorithms
// (cudnn.benchmark), PyTorch keeps what was measured per thread, and the synthesis threads are
// new every batch, so each measured every kernel length anew: 107 ms a blur, against 0.6 ms
// measured once and 0.2 ms as the product (H200, bench/synth-blur.py).
torch::Tensor gaussianBlurAxis(const torch::Tensor& x, int dim, double sigma, bool bandedProduct);

}  // namespace segnode::training
