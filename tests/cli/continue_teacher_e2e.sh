#!/usr/bin/env bash
# A teacher continued from a trained bundle (`train --init`, teacher 0.3's run): it starts from that
# bundle's weights, its state records the start (recipe `init`, so that a resume without it or
# from another bundle is refused), and its bundle names it (provenance `continued_from`).
#   continue_teacher_e2e.sh SEGNODE_DISTILL SHARED_DATA SOURCE_DIR
set -euo pipefail
distill=$1 shared=$2 src=$3
source "$src/tests/cli/e2e_common.sh"
map=$shared/abdomen_ct/flare22_label_maps/FLARE22_Tr_0001.nii.gz
require_file "$map"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
train() {
  "$distill" train --template "$src/etc/templates/abdomen-ct-flare13.yaml" \
    --plan "$src/training/ct/abdomen-ct-flare13-3mm.plan.yaml" --name abdomen-ct-teacher --labels "$map" \
    --table "$src/training/ct/abdomen-ct-generation.tsv" --batch 1 --patch 32,32,32 --device cpu "$@"
}
train --version 0.0.1 --iterations 1 --out "$work/a" >/dev/null 2>"$work/a.log" || fail "first teacher: $(tail -3 "$work/a.log")"
a=$work/a/abdomen-ct-teacher/0.0.1
# A learning rate of 1e-7 and no EMA: the continued teacher's weights are the start's, give or take
# (another seed, so that its own He initialisation would differ).
cont=(--version 0.0.2 --iterations 2 --lr 1e-7 --ema-decay 0 --seed 2 --out "$work/b")
train "${cont[@]}" --init "$a" --stop-after 1 >/dev/null 2>"$work/b.log" || fail "continue: $(tail -3 "$work/b.log")"
sha=$(sed -n 's/^  sha256: //p' "$a/bundle.yaml" | head -1)
grep -q "^  init: abdomen-ct-teacher@0.0.1 $sha" "$work/b/work/state.yaml" || fail "no init in the state's recipe: $(cat "$work/b/work/state.yaml")"
set +e
train "${cont[@]}" --resume >"$work/c.log" 2>&1
rc=$?
set -e
[ $rc -eq 64 ] && grep -q "from init abdomen-ct-teacher@0.0.1" "$work/c.log" || fail "a resume without --init: rc $rc, $(tail -2 "$work/c.log")"
train "${cont[@]}" --init "$a" --resume >/dev/null 2>"$work/d.log" || fail "resume: $(tail -3 "$work/d.log")"
grep -q "continued_from: abdomen-ct-teacher@0.0.1 (weights sha256 $sha), trained 1 iterations" \
  "$work/b/abdomen-ct-teacher/0.0.2/bundle.yaml" || fail "no continued_from in the bundle's provenance"
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$src/tests/cli" /usr/bin/python3 - "$a/weights.safetensors" "$work/b/abdomen-ct-teacher/0.0.2/weights.safetensors" <<'PY' || fail "the continued teacher did not start from the bundle's weights"
import sys
import numpy as np
from safetensors_read import tensors
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
assert a.keys() == b.keys()
worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
print(f"largest weight change over 2 iterations at lr 1e-7: {worst:.2e}")
assert worst < 1e-3, worst
PY
echo "a continued teacher starts from its bundle and records it"
