#!/usr/bin/env bash
# Stages .train-data2/ for `run.sh continue-brain`: 8 training label maps, the generation table
# and the first lease's bundles (students re-written in fp16 so that everything fits the 64 MiB
# a device call carries).  Usage: stage-continue.sh BUNDLES_DIR
set -euo pipefail
cd "$(dirname "$0")/../.."
bundles=$1 src=${2:-../shared/data}/brain_mr/synthseg_label_maps
rm -rf .train-data2 && mkdir -p .train-data2/brain .train-data2/models
cp "$src"/training_seg_0{1,2,3,4,6,7,8,9}.nii.gz "$src"/synthseg_generation_label_table.tsv .train-data2/brain/
cp -r "$bundles"/brain-mr-teacher .train-data2/models/
for w in 2 4 8; do
  build/bin/segnode-distill export --bundle "$bundles/brain-mr-student-w$w/1.0.0" --models-dir .train-data2/models --fp16
done
du -sh .train-data2
