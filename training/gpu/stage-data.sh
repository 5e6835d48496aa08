#!/usr/bin/env bash
# Copies the training data from ../shared/data into .train-data/ (git-ignored), which a device
# call carries (`carry: [".train-data"]`): the GPU machine sees the work tree, not ../shared.
set -euo pipefail
cd "$(dirname "$0")/../.."
src=${1:-../shared/data}
mkdir -p .train-data/brain .train-data/ct
cp "$src"/brain_mr/synthseg_label_maps/training_seg_*.nii.gz "$src"/brain_mr/synthseg_label_maps/synthseg_generation_label_table.tsv .train-data/brain/
cp "$src"/abdomen_ct/totalseg_example_ct/example_ct.nii.gz "$src"/abdomen_ct/totalseg_example_ct/example_seg_fast_force_split.nii.gz .train-data/ct/
du -sh .train-data
