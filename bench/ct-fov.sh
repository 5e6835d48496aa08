#!/usr/bin/env bash
# What a CT bundle does with a scanner's whole field of view (docs/benchmarks.md, "The CT body
# crop"): the real example CT as distributed (cut to the body) and placed in square FOVs of air of
# 400, 440, 480 and 520 mm (bench/ct-fov.py), Dice against its reference labels and network tiles
# per volume (`evaluate`, fp32), then seconds per volume on the 480 mm image, the bundles
# interleaved (`segnode bench`, each bundle's own precision unless PRECISION is set).
#   [PRECISION=fp32|bf16] bash bench/ct-fov.sh BUNDLE_DIR ...     (default: the installed CT teacher)
# CPU only; about 6 minutes per teacher-sized bundle on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
newest_teacher=$(ls -d etc/models/abdomen-ct-teacher/*/ | sort -V | tail -1)
bundles=("${@:-${newest_teacher%/}}")
shared=../shared/data out=build/ct-fov
[ -f "$shared/abdomen_ct/totalseg_example_ct/example_ct.nii.gz" ] || { echo "skipped: the example CT is missing"; exit 0; }
rm -rf "$out" && mkdir -p "$out/models"
bench/ct-fov.py "$shared" "$out/data"
image=$out/data/example_ct_fov480.nii.gz
build/bin/segnode-distill evaluate --cases "$out/data/cases.yaml" --data-root "$out/data" --out "$out/report" \
  --precision fp32 --bundles "${bundles[@]}" >"$out/report.log" 2>&1 || { tail -5 "$out/report.log" >&2; exit 1; }
sed -n "1,/^$/p" "$out/report/report.md"
echo "per case: the pancreas's Dice, then the mean Dice and seconds (fp32 evaluation):"
awk -F, '$4 == "\"pancreas\"" { print "  " $1, $2, $5 }' "$out/report/report.csv"
grep -h ": mean Dice" "$out/report.log" | sed 's/;.*//; s/^/  /'
# `segnode bench` resolves NAME@VERSION in one models folder: link each bundle there.
refs=()
for b in "${bundles[@]}"; do
  b=$(cd "$b" && pwd)
  name=$(sed -n 's/^name: //p' "$b/bundle.yaml") version=$(sed -n 's/^version: //p' "$b/bundle.yaml")
  mkdir -p "$out/models/$name" && ln -sfn "$b" "$out/models/$name/$version"
  refs+=("$name@$version${PRECISION:+:onednn:$PRECISION}")
done
build/bin/segnode bench --models-dir "$out/models" --input "$image" --repeat 2 --warmup 1 \
  --models "$(IFS=,; echo "${refs[*]}")"
