#!/usr/bin/env bash
# A student whose widths are given per stage (`distill --features-per-stage`, issue 10's
# reallocated w4): the budget is the divisor rule's parameter count and is enforced, the bundle
# carries the widths and says so, and a stage kept at the teacher's full width starts as the
# teacher's own filters (pruning keeps every channel there, in order).
#   reallocated_student_e2e.sh SEGNODE_DISTILL SHARED_DATA SOURCE_DIR
set -euo pipefail
distill=$1 shared=$2 src=$3
source "$src/tests/cli/e2e_common.sh"
maps=$shared/brain_mr/synthseg_label_maps
require_file "$maps/training_seg_01.nii.gz"
teacher=$src/etc/models/brain-mr-student-w2/0.4.6  # features 16:32:64:128:160
require_file "$teacher/weights.safetensors"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  "$distill" distill --teacher "$teacher" --divisors 2 --labels "$maps/training_seg_01.nii.gz" \
    --table "$maps/synthseg_generation_label_table.tsv" --device cpu --batch 1 --patch 32,32,32 \
    --iterations 1 --lr 1e-7 --ema-decay 0 --names brain-mr-student-w4 --version 0.0.1 "$@"
}
refused() {  # refused ALLOCATION WHAT: exit 64 (EX_USAGE) and the reason
  set +e
  run --features-per-stage "$1" --out "$work/no" >"$work/no.log" 2>&1
  local rc=$?
  set -e
  [ $rc -eq 64 ] && grep -q "$2" "$work/no.log" || fail "$1: rc $rc, $(tail -2 "$work/no.log")"
}
refused 16:32:64:128:160 "4145684 parameters, over the 1/2 rule's (of this teacher) 1039308"
refused 16:24:40:56 "the teacher has 5 stages"
refused 16:24:x:56:64 "'x' is not a width"
run --features-per-stage 16:24:40:56:64 --out "$work/a" >/dev/null 2>"$work/a.log" || fail "reallocated: $(tail -3 "$work/a.log")"
b=$work/a/brain-mr-student-w4/0.0.1
grep -q "features_per_stage: \[16, 24, 40, 56, 64\]" "$b/bundle.yaml" || fail "the bundle's widths"
grep -q "features_per_stage: reallocated within the 1/4 rule's parameters" "$b/bundle.yaml" || fail "no provenance"
grep -q "student with the 1/4-width rule's parameters, reallocated over the stages, distilled from brain-mr-student-w2@0.4.6" "$b/bundle.yaml" || fail "description: $(grep description: "$b/bundle.yaml")"
grep -q "params: 969348" "$b/bundle.yaml" || fail "parameter count: $(grep params: "$b/bundle.yaml")"
PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$src/tests/cli" /usr/bin/python3 - "$teacher/weights.safetensors" "$b/weights.safetensors" <<'PY' || fail "stage 0 is not the teacher's"
import sys
import numpy as np
from safetensors_read import tensors
t, s = tensors(sys.argv[1]), tensors(sys.argv[2])
# Stage 0 keeps all 16 of the teacher's channels: its first conv is the teacher's (lr 1e-7, no EMA).
for k, inputs in (("encoder.0.0.conv.weight", 1), ("encoder.0.1.conv.weight", 16)):
    assert t[k].shape == s[k].shape == (16, inputs, 3, 3, 3), (k, t[k].shape, s[k].shape)
    worst = float(np.abs(t[k] - s[k]).max())
    print(f"{k}: largest difference from the teacher {worst:.2e}")
    assert worst < 1e-3, worst
# Stage 1 keeps 24 of 32: a strict subset, so its shape differs.
assert s["encoder.1.0.conv.weight"].shape == (24, 16, 3, 3, 3), s["encoder.1.0.conv.weight"].shape
PY
echo "a reallocated student keeps its budget, records its widths and starts from the teacher's channels"
