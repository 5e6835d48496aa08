#!/usr/bin/env bash
# One round of brain training with one job per GPU, all inside one 10-minute device command:
#   job 0  the teacher, continued from IN's teacher
#   job 1  brain-mr-student-w4: distilled from IN's teacher (KD + gradient KD), continued
#   job 2  brain-mr-student-w2: the same at half width
#   job 3  brain-mr-student-w4-nokd: the same w4 with the supervised loss alone (ablation: does KD
#          help at this budget?)
# Jobs go round-robin over the GPUs nvidia-smi lists (several share a GPU when there are fewer
# than four). Every job stops on its time budget; the bundles land in gpu-runs/ROUND/models (the
# next round's IN while the machine stays warm) and, packed, in $OUT.
#   bash training/gpu/parallel.sh IN ROUND VERSION SECONDS
#   IN: a folder with models/<name>/<version>/ and brain/ (label maps + generation table):
#       .train-data3 from stage-round.sh, or gpu-runs/<previous round> on a warm machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
in=$1 round=$2 version=$3 budget=$4
t0=$(date +%s)
OUT=${OUT:-$PWD/gpu-runs/out}
mkdir -p "gpu-runs/$round" "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
if [ ! -x build-gpu/bin/segnode-distill ]; then
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGNODE_BUILD_DAEMON=OFF -DSEGNODE_BUILD_TESTS=OFF \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CUDA_ARCHITECTURES=90 >"gpu-runs/cmake.log" 2>&1 || { tail -40 gpu-runs/cmake.log; exit 1; }
  ninja -k 0 -C build-gpu segnode-distill >gpu-runs/ninja.log 2>&1 || { grep -A3 error gpu-runs/ninja.log | head -100; exit 1; }
fi
echo "build: $(( $(date +%s) - t0 )) s"
D=$PWD/build-gpu/bin/segnode-distill
data=.train-data3/brain
[ -d "$in/brain" ] && data=$in/brain
train=$(ls "$data"/training_seg_*.nii.gz | paste -sd,)
table=$data/synthseg_generation_label_table.tsv
bundle() { ls -d "$in/models/$1"/*/ 2>/dev/null | sort -V | tail -1 || true; }
teacher=$(bundle brain-mr-teacher)
ngpu=$(nvidia-smi -L | wc -l)
$D plan --template etc/templates/brain-mr-synthseg.yaml --labels "$train" --gpu-memory-gb 4 --out "gpu-runs/$round/plan.yaml" >/dev/null
left=$(( budget - ($(date +%s) - t0) - 45 ))  # 45 s: loading, synthesis set-up, final save
echo "GPUs: $ngpu, teacher: $teacher, training seconds per job: $left"
common=(--labels "$train" --table "$table" --iterations 100000000 --time-budget "$left" --log-every 500 --lr 0.005)
run_teacher() {
  "$D" train --template etc/templates/brain-mr-synthseg.yaml --plan "gpu-runs/$round/plan.yaml" --init "$teacher" \
    --out "gpu-runs/$round/brain-mr-teacher" --name brain-mr-teacher --version "$version" --fp16 "${common[@]}"
}
run_student() {  # divisor name kd-weight gradient-weight; a new name starts from the w4 student
  local init
  init=$(bundle "$2"); [ -n "$init" ] || init=$(bundle brain-mr-student-w4)
  "$D" distill --teacher "$teacher" --divisors "$1" --name "$2" --version "$version" --init-students "$init" \
    --kd-weight "$3" --gradient-weight "$4" --warmup 0 --out "gpu-runs/$round/$2" "${common[@]}"
}
jobs=("run_teacher" "run_student 4 brain-mr-student-w4 1 10" "run_student 2 brain-mr-student-w2 1 10"
      "run_student 4 brain-mr-student-w4-nokd 0 0")
pids=()
for i in "${!jobs[@]}"; do
  CUDA_VISIBLE_DEVICES=$(( i % ngpu )) ${jobs[$i]} >"gpu-runs/$round/log-$i" 2>&1 &
  pids+=($!)
done
status=0
for i in "${!pids[@]}"; do wait "${pids[$i]}" || { echo "job $i (${jobs[$i]}) failed"; status=1; }; done
for i in "${!jobs[@]}"; do echo "== job $i"; grep -v Warning "gpu-runs/$round/log-$i" | tail -4 || true; done
rm -rf "gpu-runs/$round/models" && mkdir -p "gpu-runs/$round/models"
for b in $(find "gpu-runs/$round" -path "*/$version/bundle.yaml" -not -path "*/models/*"); do
  d=$(dirname "$b"); name=$(basename "$(dirname "$d")")
  mkdir -p "gpu-runs/$round/models/$name" && cp -r "$d" "gpu-runs/$round/models/$name/"
done
ln -sfn "$PWD/$data" "gpu-runs/$round/brain"
tar cf "gpu-runs/$round.tar" -C "gpu-runs/$round" models
split -b 15M -d "gpu-runs/$round.tar" "$OUT/bundles.tar.part"
tar czf "$OUT/logs.tgz" gpu-runs/"$round"/log-* gpu-runs/"$round"/*/work/curves.csv 2>/dev/null || true
ls -la "$OUT"; echo "total: $(( $(date +%s) - t0 )) s"
exit $status
