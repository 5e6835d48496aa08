#!/usr/bin/env bash
# int8 end to end through the real programs (issue 14): a bundle without calibration refuses
# int8 with the fix; `segnode-distill calibrate` writes inference.int8_calibration into its
# bundle.yaml (weights and sha256 untouched); `segnode segment --precision int8` then labels the
# volume like fp32 for most voxels (random weights: only agreement is meaningful), or, on a CPU
# without VNNI / AMX-INT8, says it runs fp32. Usage: calibrate_e2e.sh SEGNODE DISTILL SHARED_DATA SOURCE_DIR
set -euo pipefail
segnode=$1 distill=$2 data=$3 src=$4
input=$data/brain_mr/colin27_mricron/ch2.nii.gz
source "$(dirname "$0")/e2e_common.sh"
require_file "$input"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tiny_brain_template "$src" "$work/template.yaml"
"$segnode" models init --template "$work/template.yaml" --name q --version 0.0.1 --models-dir "$work/models" --seed 9
bundle=$work/models/q/0.0.1
set +e; "$segnode" segment --model q --input "$input" --output "$work/x.nii" --precision int8 --models-dir "$work/models" > "$work/out" 2>&1; rc=$?; set -e
[[ $rc == 65 ]] && grep -q "int8_calibration" "$work/out" || { cat "$work/out"; fail "int8 without calibration: exit $rc"; }
sum=$(sha256sum "$bundle/weights.safetensors")
"$distill" calibrate --bundle "$bundle" --images "$input" --threads 2
grep -q "int8_calibration:" "$bundle/bundle.yaml" || fail "no calibration written"
[[ $(sha256sum "$bundle/weights.safetensors") == "$sum" ]] || fail "calibrate changed the weights"
"$segnode" models --verify --models-dir "$work/models" | grep -q "q " || fail "the calibrated bundle does not verify"
"$segnode" segment --model q --input "$input" --output "$work/fp32.nii" --precision fp32 --threads 2 --models-dir "$work/models" 2>/dev/null
"$segnode" segment --model q --input "$input" --output "$work/int8.nii" --precision int8 --threads 2 --models-dir "$work/models" 2> "$work/err"
if grep -Eqw "avx512_vnni|avx_vnni|amx_int8" /proc/cpuinfo; then
  /usr/bin/python3 - "$work/fp32.nii" "$work/int8.nii" <<'PY'
import sys, nibabel as nib, numpy as np
a, b = (np.asarray(nib.load(p).dataobj) for p in sys.argv[1:])
agree = float((a == b).mean())
print(f"int8 agrees with fp32 on {agree:.4f} of voxels, differs on {int((a != b).sum())}")
assert agree > 0.9, agree
assert (a != b).any(), "identical labels: int8 did not run"
PY
else
  grep -q "running float32" "$work/err" || { cat "$work/err"; fail "no fallback warning on a CPU without VNNI"; }
fi
echo "calibrate end to end: ok"
