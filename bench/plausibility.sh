#!/usr/bin/env bash
# Plausibility checks and confidence against wrong inputs (issue 16; docs/models.md,
# "Plausibility"): the installed brain and CT models on inputs they must not accept, made here
# from ../shared/data. The validation cases' confidence comes from `segnode-distill evaluate`
# (bench/models.sh); this prints what `segnode segment` decides for each wrong input.
#   [BRAIN_MODELS="NAME ..."] [CT_MODELS="NAME ..."] bash bench/plausibility.sh [MODELS_DIR] [OUT_DIR]
# The models: the brain w4 student and the CT teacher by default (the CI test's reference rows, to
# which it adds the CT w2 student; the default brain route runs w2, the CT route this teacher);
# name others to check them on the same inputs (an empty list skips that half).
# CPU only; a few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-etc/models} out=${2:-build/plausibility}
shared=$(cd ../shared/data && pwd)
segnode=${SEGNODE:-build/bin/segnode}  # the program under test (ctest passes its own)
mkdir -p "$out"
# The real T1 the node gets as DICOM (Philips MPRAGE), as the volume the node would segment.
$segnode convert --input "$shared/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom" --output "$out/philips-t1.nii.gz" 2>/dev/null
/usr/bin/python3 - "$out" "$shared" <<'PY'
import sys
import nibabel as nib, numpy as np
out, shared = sys.argv[1:]
t1 = nib.load(f"{out}/philips-t1.nii.gz")
shape, affine = t1.shape, t1.affine
rng = np.random.default_rng(16)
# A QA-phantom-like object on the T1's grid: a water cylinder along the slice axis with 5 mm
# stripes of two intensities (what a geometry phantom looks like), the rest air.
i, j, k = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
zooms = t1.header.get_zooms()[:3]
ci, cj = shape[0] / 2, shape[1] / 2
r = np.hypot((i - ci) * zooms[0], (j - cj) * zooms[1])
stripes = np.where((np.floor(k * zooms[2] / 5) % 2) == 0, 900.0, 300.0)
phantom = np.where(r < 80, stripes, 0) + rng.normal(0, 20, shape)
nib.save(nib.Nifti1Image(phantom.astype(np.float32), affine), f"{out}/phantom-striped.nii.gz")
# Pure noise on the same grid: MR-like intensities, and for the CT model Hounsfield units across
# air to bone.
nib.save(nib.Nifti1Image(rng.normal(100, 30, shape).astype(np.float32), affine), f"{out}/noise.nii.gz")
nib.save(nib.Nifti1Image(rng.uniform(-1000, 1000, shape).astype(np.float32), affine), f"{out}/noise-hu.nii.gz")
PY
ct=$shared/abdomen_ct/totalseg_example_ct/example_ct.nii.gz
run() {  # MODEL INPUT LABEL
  local line
  line=$($segnode segment --models-dir "$models" --model "$1" --input "$2" --output "$out/$3.labels.nii.gz" --threads 2 2>&1 |
         grep -e "plausible" | sed 's/^segnode: //')
  printf '| %s | %s | %s |\n' "$1" "$3" "$line"
}
echo "| model | input | verdict |"
echo "|---|---|---|"
for m in ${BRAIN_MODELS-brain-mr-student-w4}; do
  run "$m" "$out/philips-t1.nii.gz" "real T1 (Philips MPRAGE, the right input)"
  run "$m" "$out/phantom-striped.nii.gz" "striped phantom on the T1's grid"
  run "$m" "$ct" "abdominal CT (TotalSegmentator example)"
  run "$m" "$out/noise.nii.gz" "pure noise"
done
for m in ${CT_MODELS-abdomen-ct-teacher}; do
  run "$m" "$ct" "abdominal CT (TotalSegmentator example)"
  run "$m" "$out/philips-t1.nii.gz" "brain T1 (Philips MPRAGE)"
  run "$m" "$out/noise-hu.nii.gz" "pure noise (uniform -1000 to 1000 HU)"
done
