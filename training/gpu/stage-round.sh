#!/usr/bin/env bash
# Stages .train-data3/ for `parallel.sh`: the 14 training label maps re-encoded as int16 (the
# originals are int32 or float32 holding the same integer labels; int16 halves what a device call
# carries), the generation table, and the bundles a round continues from, students in fp16.
#   bash training/gpu/stage-round.sh MODELS_DIR   (MODELS_DIR/<name>/<version>/bundle.yaml)
# The committed bundles put the work tree over the 64 MiB a call carries: move etc/models aside
# for the call (docs/models.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
models=$1 src=${2:-../shared/data}/brain_mr/synthseg_label_maps
rm -rf .train-data3 && mkdir -p .train-data3/brain .train-data3/models
/usr/bin/python3 - "$src" .train-data3/brain <<'PY'
import glob, os, sys
import nibabel as nib, numpy as np
src, dst = sys.argv[1:]
for f in sorted(glob.glob(os.path.join(src, "training_seg_*.nii.gz"))):
    if f.endswith(("_18.nii.gz", "_19.nii.gz")):
        continue  # validation maps stay here
    im = nib.load(f)
    labels = np.asanyarray(im.dataobj)
    assert np.all(labels == np.round(labels)) and labels.max() < 32768
    header = im.header.copy()
    header.set_data_dtype(np.int16)
    header.set_slope_inter(1, 0)
    nib.save(nib.Nifti1Image(labels.astype(np.int16), im.affine, header), os.path.join(dst, os.path.basename(f)))
PY
cp "$src"/synthseg_generation_label_table.tsv .train-data3/brain/
for name in brain-mr-teacher brain-mr-student-w2 brain-mr-student-w4 brain-mr-student-w4-nokd; do
  dir=$(ls -d "$models/$name"/*/ 2>/dev/null | sort -V | tail -1) || true
  [ -n "$dir" ] || continue
  if [[ $name == *teacher ]]; then mkdir -p .train-data3/models/$name && cp -r "$dir" .train-data3/models/$name/
  else build/bin/segnode-distill export --bundle "$dir" --models-dir .train-data3/models --fp16 >/dev/null; fi
done
find .train-data3/models -name bundle.yaml
du -sh .train-data3
