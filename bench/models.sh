#!/usr/bin/env bash
# Validation of the trained bundles (docs/models.md): writes the held-out synthetic pairs, runs
# `segnode-distill evaluate` for the brain and CT bundles and prints the summary tables.
#   bash bench/models.sh [MODELS_DIR] [OUT_DIR]
# CPU only; about 30 minutes on 2 cores (the teacher dominates). Latency ratios come from
# `segnode bench` (interleaved, same run): see the end of this script.
set -euo pipefail
cd "$(dirname "$0")/.."
models=${1:-etc/models} out=${2:-build/models-eval}
shared=$(cd ../shared/data && pwd)
D=build/bin/segnode-distill
S=$shared/brain_mr/synthseg_label_maps
mkdir -p "$out/data"
ln -sfn "$shared" "$out/data/shared"
# Held-out label maps 18 and 19 (never used in training), fixed seed.
$D synth --template etc/templates/brain-mr-synthseg.yaml --labels $S/training_seg_18.nii.gz,$S/training_seg_19.nii.gz \
  --table $S/synthseg_generation_label_table.tsv --out "$out/data/val" --seed 2000 --device cpu >/dev/null
b() { ls -d "$models/$1"/*/ | sort -V | tail -1; }
$D evaluate --cases training/eval/brain-cases.yaml --data-root "$out/data" --out "$out/brain" \
  --bundles "$(b brain-mr-teacher),$(b brain-mr-student-w2),$(b brain-mr-student-w4),$(b brain-mr-student-w8)"
# CT: the FLARE22 bundles (issue 15) on the 8 held-out maps (arterial phase, 6 mm slices: neither
# drawn in training) and the real TotalSegmentator example.
rm -rf "$out/data/val-ct"
bash training/ct/validation-data.sh "$out/data"
students=$(for w in 2 4 8; do [ -d "$models/abdomen-ct-student-w$w" ] && echo ",$(b abdomen-ct-student-w$w)"; done | tr -d '\n')
$D evaluate --cases training/eval/abdomen-ct-cases.yaml --data-root "$out/data" --out "$out/ct" \
  --bundles "$(b abdomen-ct-teacher)$students"
# CPU latency, teacher vs 1/4 student, interleaved on the same volume.
build/bin/segnode bench --models-dir "$models" --models brain-mr-teacher,brain-mr-student-w4 \
  --input "$shared/brain_mr/colin27_mricron/ch2.nii.gz" --repeat 3
