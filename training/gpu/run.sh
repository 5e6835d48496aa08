#!/usr/bin/env bash
# The whole GPU training run, in phases that each fit one 10-minute device command:
#   bash training/gpu/run.sh teacher-brain SECONDS   build, smoke test, train brain-mr-teacher
#   bash training/gpu/run.sh students-brain SECONDS  distil brain-mr-student-w2/-w4/-w8
#   bash training/gpu/run.sh ct SECONDS              abdomen-ct-teacher, then abdomen-ct-student-w4
# State between phases lives in gpu-runs/ (git-ignored; it survives while the machine stays
# warm). Finished bundles are packed into $OUT as bundles.tar split into 15 MiB parts (the device
# returns files of at most 16 MiB); `training/gpu/unpack.sh DIR` joins them here.
# Data: training/gpu/stage-data.sh fills .train-data/, carried with the command.
set -euo pipefail
cd "$(dirname "$0")/../.."
phase=$1
budget=${2:-300}
OUT=${OUT:-$PWD/gpu-runs/out}
mkdir -p gpu-runs "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

build() {
  if [ ! -x build-gpu/bin/segnode-distill ]; then
    local prefix
    prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
    cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGNODE_BUILD_DAEMON=OFF \
      -DSEGNODE_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CUDA_ARCHITECTURES=90 >gpu-runs/cmake.log 2>&1 ||
      { tail -40 gpu-runs/cmake.log; exit 1; }
    ninja -k 0 -C build-gpu segnode-distill >gpu-runs/ninja.log 2>&1 || { grep -A3 "error" gpu-runs/ninja.log | head -150; exit 1; }
  fi
}
D=build-gpu/bin/segnode-distill
B=.train-data/brain
BRAIN_TRAIN=$(ls $B/training_seg_*.nii.gz 2>/dev/null | grep -v -e _18 -e _19 | paste -sd,) || true  # 18 and 19: validation
BRAIN_T=etc/templates/brain-mr-synthseg.yaml
CT_T=etc/templates/abdomen-ct-totalseg.yaml
CT_L=.train-data/ct/example_seg_fast_force_split.nii.gz
CT_I=.train-data/ct/example_ct.nii.gz

pack() {  # pack bundle directories (paths under gpu-runs/) into $OUT/bundles.tar.partNN
  rm -rf gpu-runs/pack && mkdir -p gpu-runs/pack
  for d in "$@"; do cp -r "gpu-runs/$d" gpu-runs/pack/; done
  tar cf gpu-runs/bundles.tar -C gpu-runs/pack .
  split -b 15M -d gpu-runs/bundles.tar "$OUT/bundles.tar.part"
  tar czf "$OUT/curves.tgz" gpu-runs/*/work/curves.csv
  ls -la "$OUT"
}

case $phase in
teacher-brain)
  t0=$(date +%s)
  build
  echo "build: $(( $(date +%s) - t0 )) s"; nvidia-smi --query-gpu=name,memory.used --format=csv
  $D plan --template $BRAIN_T --labels "$BRAIN_TRAIN" --gpu-memory-gb 4 --out gpu-runs/brain-plan.yaml
  # Smoke: a few steps prove the CUDA path before the budget is spent.
  $D train --template $BRAIN_T --plan gpu-runs/brain-plan.yaml --labels "$BRAIN_TRAIN" --table $B/synthseg_generation_label_table.tsv \
    --out gpu-runs/smoke --name smoke --iterations 20 --log-every 10
  left=$(( budget - ($(date +%s) - t0) ))
  $D train --template $BRAIN_T --plan gpu-runs/brain-plan.yaml --labels "$BRAIN_TRAIN" --table $B/synthseg_generation_label_table.tsv \
    --out gpu-runs/brain-teacher --name brain-mr-teacher --version 1.0.0 --iterations 1000000 --time-budget $left \
    --log-every 250 --fp16 --resume
  pack brain-teacher/brain-mr-teacher
  ;;
students-brain)
  build
  $D distill --teacher gpu-runs/brain-teacher/brain-mr-teacher/1.0.0 --labels "$BRAIN_TRAIN" \
    --table $B/synthseg_generation_label_table.tsv --out gpu-runs/brain-students --divisors 2,4,8 --version 1.0.0 \
    --iterations 1000000 --time-budget "$budget" --log-every 250 --resume
  pack brain-teacher/brain-mr-teacher brain-students/brain-mr-student-w2 brain-students/brain-mr-student-w4 brain-students/brain-mr-student-w8
  ;;
ct)
  build
  $D plan --template $CT_T --labels $CT_L --images $CT_I --gpu-memory-gb 2 --out gpu-runs/ct-plan.yaml
  $D train --template $CT_T --plan gpu-runs/ct-plan.yaml --labels $CT_L --images $CT_I --out gpu-runs/ct-teacher \
    --name abdomen-ct-teacher --version 1.0.0 --iterations 1000000 --time-budget $(( budget * 45 / 100 )) --log-every 250 \
    --fp16 --resume
  $D distill --teacher gpu-runs/ct-teacher/abdomen-ct-teacher/1.0.0 --labels $CT_L --images $CT_I \
    --out gpu-runs/ct-students --divisors 4 --version 1.0.0 --iterations 1000000 --time-budget $(( budget * 45 / 100 )) \
    --log-every 250 --resume
  pack ct-teacher/abdomen-ct-teacher ct-students/abdomen-ct-student-w4
  ;;
continue-brain)
  # A second lease continues the brain teacher and students from their bundles (carried in
  # .train-data2/: training/gpu/stage-continue.sh), then validates on the held-out maps.
  read -r tt st <<<"$budget"
  build
  C=.train-data2
  TRAIN=$(ls $C/brain/training_seg_0*.nii.gz | paste -sd,)
  $D plan --template $BRAIN_T --labels "$TRAIN" --gpu-memory-gb 4 --out gpu-runs/brain-plan.yaml >/dev/null
  $D train --template $BRAIN_T --plan gpu-runs/brain-plan.yaml --labels "$TRAIN" --table $C/brain/synthseg_generation_label_table.tsv \
    --init $C/models/brain-mr-teacher/1.0.0 --lr 0.005 --out gpu-runs/brain-teacher2 --name brain-mr-teacher --version 1.1.0 \
    --iterations 1000000 --time-budget "$tt" --log-every 500 --fp16
  $D distill --teacher gpu-runs/brain-teacher2/brain-mr-teacher/1.1.0 --labels "$TRAIN" \
    --table $C/brain/synthseg_generation_label_table.tsv --out gpu-runs/brain-students2 --divisors 2,4,8 --version 1.1.0 \
    --init-students $C/models/brain-mr-student-w2/1.0.0,$C/models/brain-mr-student-w4/1.0.0,$C/models/brain-mr-student-w8/1.0.0 \
    --lr 0.005 --warmup 0 --iterations 1000000 --time-budget "$st" --log-every 500
  pack brain-teacher2/brain-mr-teacher brain-students2/brain-mr-student-w2 brain-students2/brain-mr-student-w4 brain-students2/brain-mr-student-w8
  ;;
continue-w4)
  # The last minutes of a lease go to the student the node runs by default.
  build
  C=.train-data2
  TRAIN=$(ls $C/brain/training_seg_0*.nii.gz | paste -sd,)
  $D distill --teacher $C/models/brain-mr-teacher/1.1.0 --labels "$TRAIN" \
    --table $C/brain/synthseg_generation_label_table.tsv --out gpu-runs/brain-w4 --divisors 4 --version 1.2.0 \
    --init-students $C/models/brain-mr-student-w4/1.1.0 --lr 0.005 --warmup 0 --iterations 1000000 \
    --time-budget "$budget" --log-every 500
  pack brain-w4/brain-mr-student-w4
  ;;
*) echo "unknown phase $phase"; exit 64 ;;
esac
