#!/usr/bin/env bash
# The main job, until the DICOM daemon lands: segment a real brain MR (Colin27 T1 from
# ../shared/data, or the file given) with the default brain model, labels next to it in build/out/.
#   scripts/run.sh [INPUT.nii.gz]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
input=${1:-../shared/data/brain_mr/colin27_mricron/ch2.nii.gz}
[[ -f $input ]] || { echo "run: $input not found; pass a T1 NIfTI as the first argument" >&2; exit 66; }
mkdir -p build/out
models=etc/models
model=brain-mr-student-w4
if ! build/bin/segnode models --models-dir "$models" | grep -q "^$model "; then
  # No trained brain bundle is installed yet (the distillation issue delivers them). Make a clearly
  # labelled random-weight stand-in outside etc/models so the pipeline can be seen working.
  models=build/models
  if ! build/bin/segnode models --models-dir "$models" | grep -q "^$model "; then
    build/bin/segnode models init --template etc/templates/brain-mr-synthseg.yaml --name "$model" \
      --version 0.0.0 --width-divisor 4 --models-dir "$models"
  fi
  echo "run: NOTE: no trained $model in etc/models; using an UNTRAINED stand-in from $models" >&2
fi
out=build/out/$(basename "${input%%.nii*}")_labels.nii.gz
build/bin/segnode segment --model "$model" --input "$input" --output "$out" --models-dir "$models"
echo "run: labels written to $out"
