#!/usr/bin/env bash
# Peak memory of one inference on the largest series processing.max_voxels lets through by
# default: a synthetic 512 x 512 x 600 CT (0.8 x 0.8 x 1 mm, noise over the whole field, so
# nothing is cropped away) through `segnode segment` with the default CT route's model, the CT
# teacher (docs/reliability.md).
#   bash bench/memory.sh [MODEL] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-abdomen-ct-teacher} threads=${2:-2}
work=build/bench-memory
mkdir -p $work
[[ -f $work/ct512.nii ]] || /usr/bin/python3 - $work/ct512.nii <<'PY'
import sys
import nibabel as nib, numpy as np
a = np.random.default_rng(0).normal(40, 200, (512, 512, 600)).astype(np.int16)
nib.save(nib.Nifti1Image(a, np.diag([0.8, 0.8, 1.0, 1.0])), sys.argv[1])
PY
/usr/bin/time -v build/bin/segnode segment --model "$model" --input $work/ct512.nii --output $work/labels.nii.gz \
  --threads "$threads" 2>&1 | grep -E "Maximum resident|Elapsed"
