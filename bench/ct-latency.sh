#!/usr/bin/env bash
# CPU time per abdominal CT of the FLARE22 networks (issue 15's target: w4 <= 10 s per abdomen on
# this machine), measured before any of them is trained: time does not depend on the weights, so
# the networks are the template + plan's teacher (one CPU iteration; 3 mm unless PLAN says) and
# its w2/w4/w8 widths with random weights. `segnode bench` interleaves teacher and w4 in fp32 and
# bf16 on the real TotalSegmentator example CT; `segnode segment` gives the wall time of one whole
# call (load, resample, sliding window, labels back on the input grid).
#   bash bench/ct-latency.sh [OUT_DIR]
#   PLAN=training/ct/abdomen-ct-flare13-2mm.plan.yaml bash bench/ct-latency.sh build/ct-latency-2mm
# PLAN: the grid (default 3 mm; the 2 mm plan is the 2 mm teachers' and their students').
# CPU only; about two minutes on 2 cores (3 mm), six (2 mm).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/ct-latency}
shared=$(cd ../shared/data && pwd)
D=build/bin/segnode-distill S=build/bin/segnode
ct=$shared/abdomen_ct/totalseg_example_ct/example_ct.nii.gz
plan=${PLAN:-training/ct/abdomen-ct-flare13-3mm.plan.yaml}
rm -rf "$out" && mkdir -p "$out/models"
$D train --template etc/templates/abdomen-ct-flare13.yaml --plan "$plan" \
  --name abdomen-ct-teacher --version 0.0.0 --labels "$shared/abdomen_ct/flare22_label_maps/FLARE22_Tr_0001.nii.gz" \
  --table training/ct/abdomen-ct-generation.tsv --iterations 1 --batch 1 --patch 48,48,48 --device cpu \
  --out "$out/train" >/dev/null 2>&1
mv "$out/train/abdomen-ct-teacher" "$out/models/"
# Each width once, in turn (distill's latency probe; no width fits a budget of 1 ms, so it stops
# after timing them all and leaves their random bundles in $out/probe/latency/wN).
$D distill --teacher "$out/models/abdomen-ct-teacher/0.0.0" --divisors 2,4,8 --latency-budget 0.001 \
  --latency-input "$ct" --dry-run --out "$out/probe" 2>&1 | grep "^width" || true
w4=$out/models/abdomen-ct-student-w4/0.0.0
mkdir -p "$w4" && cp "$out/probe/latency/w4/"* "$w4/"
sed -i 's/^name: latency-probe/name: abdomen-ct-student-w4/; s/^version: .*/version: 0.0.0/' "$w4/bundle.yaml"
$S bench --models-dir "$out/models" --input "$ct" --repeat 3 \
  --models abdomen-ct-teacher:onednn:fp32,abdomen-ct-teacher:onednn:bf16,abdomen-ct-student-w4:onednn:fp32,abdomen-ct-student-w4:onednn:bf16
for precision in fp32 bf16; do
  t0=$(date +%s%N)
  $S segment --models-dir "$out/models" --model abdomen-ct-student-w4 --precision "$precision" --input "$ct" \
    --output "$out/w4-labels.nii.gz" >/dev/null 2>&1
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf 'segnode segment, w4, %s: %d.%03d s wall\n' "$precision" $(( ms / 1000 )) $(( ms % 1000 ))
done
