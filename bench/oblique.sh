#!/usr/bin/env bash
# Putting labels back on an oblique, anisotropic input grid (issue 14): Colin27 resampled by
# bench/make-oblique.py onto a GE-like 3D T1 grid (256 x 256 x 130, 0.94 x 0.94 x 1.2 mm, tilted
# 15 and 8 degrees), segmented by the installed brain student; `segnode bench --json` reports the
# stages' medians. Last line: postprocess_s=X inference_s=Y total_s=Z
# Usage: bench/oblique.sh [--model NAME[:onednn][:fp32|:bf16]] [--repeat N]
set -euo pipefail
cd "$(dirname "$0")/.."
model=brain-mr-student-w4:onednn:fp32 repeat=2
while (( $# )); do
  case $1 in
    --model) model=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    *) echo "oblique.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
source=../shared/data/brain_mr/colin27_mricron/ch2.nii.gz
[[ -f $source ]] || { echo "oblique.sh: $source is absent" >&2; exit 66; }
/usr/bin/python3 -c 'import nibabel, scipy' 2>/dev/null || apt-get install -y -q --no-install-recommends python3-nibabel python3-scipy >&2
scripts/build.sh >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bench/make-oblique.py "$source" "$work/oblique.nii.gz"
build/bin/segnode bench --models "$model" --input "$work/oblique.nii.gz" --repeat "$repeat" --warmup 1 --json | tee "$work/bench.json" >&2
/usr/bin/python3 - "$work/bench.json" <<'PY'
import json, sys
o = json.loads(open(sys.argv[1]).readline())
print(f"postprocess_s={o['postprocess_seconds']:.2f} inference_s={o['inference_seconds']:.2f} total_s={o['median_seconds']:.2f}")
PY
