#!/usr/bin/env bash
# End to end through the real `segnode` program on a real volume (Colin27 T1), with a random-weight
# bundle this test creates (no untrained bundle is ever installed under etc/models), plus the
# errors an admin sees for the common mistakes. Usage: segment_e2e.sh SEGNODE SHARED_DATA SOURCE_DIR
set -euo pipefail
segnode=$1 data=$2 src=$3
input=$data/brain_mr/colin27_mricron/ch2.nii.gz
source "$(dirname "$0")/e2e_common.sh"
require_file "$input"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tiny_brain_template "$src" "$work/template.yaml"
"$segnode" models init --template "$work/template.yaml" --name e2e-brain --version 0.0.1 --models-dir "$work/models" --seed 4
"$segnode" models --models-dir "$work/models" | grep -q "e2e-brain .*UNTRAINED" || fail "models does not list the bundle as untrained"
"$segnode" models --json --verify --models-dir "$work/models" | grep -q '"weights_ok":true' || fail "models --verify"

"$segnode" segment --model e2e-brain --input "$input" --output "$work/labels.nii.gz" --threads 2 \
  --models-dir "$work/models" 2> "$work/stderr" || { cat "$work/stderr"; fail "segment exited $?"; }
grep -q "RANDOM (untrained) weights" "$work/stderr" || fail "no untrained warning"

# Same grid and affine as the input; values only from the bundle's label table.
/usr/bin/python3 - "$input" "$work/labels.nii.gz" "$work/models/e2e-brain/0.0.1/bundle.yaml" <<'PY'
import sys, nibabel as nib, numpy as np, yaml
img, lab = nib.load(sys.argv[1]), nib.load(sys.argv[2])
table = {l["value"] for l in yaml.safe_load(open(sys.argv[3]))["labels"]}
assert lab.shape == img.shape, (lab.shape, img.shape)
assert np.array_equal(lab.affine, img.affine), (lab.affine, img.affine)
assert lab.get_data_dtype() == np.uint8
values = set(np.unique(np.asarray(lab.dataobj)).tolist())
assert values <= table, values - table
assert len(values) > 1, "a single label everywhere"
print("labels ok:", sorted(values))
PY

# Same answer with one thread (results do not depend on the thread count).
"$segnode" segment --model e2e-brain@0.0.1 --input "$input" --output "$work/labels1.nii" --threads 1 \
  --models-dir "$work/models" 2>/dev/null
/usr/bin/python3 -c "
import sys, nibabel as nib, numpy as np
a, b = (np.asarray(nib.load(p).dataobj) for p in sys.argv[1:])
assert np.array_equal(a, b), 'thread count changed the labels'" "$work/labels.nii.gz" "$work/labels1.nii"

# Errors an admin meets: each says what is wrong, with a meaningful exit code.
expect() {  # expect CODE FRAGMENT -- command...
  local code=$1 fragment=$2; shift 3
  set +e; "$@" > "$work/out" 2>&1; local rc=$?; set -e
  [[ $rc == "$code" ]] || { cat "$work/out"; fail "exit $rc, expected $code: $*"; }
  grep -qF -- "$fragment" "$work/out" || { cat "$work/out"; fail "message lacks '$fragment': $*"; }
}
expect 66 "not installed" -- "$segnode" segment --model nope --input "$input" --output "$work/x.nii" --models-dir "$work/models"
expect 66 "no such file" -- "$segnode" segment --model e2e-brain --input "$work/none.nii" --output "$work/x.nii" --models-dir "$work/models"
expect 64 "unknown option" -- "$segnode" segment --modle e2e-brain --models-dir "$work/models"
expect 64 "is required" -- "$segnode" segment --input "$input" --output "$work/x.nii" --models-dir "$work/models"
expect 64 "--step: Value 7 not in range" -- "$segnode" segment --model e2e-brain --input "$input" --output "$work/x.nii" --step 7 --models-dir "$work/models"
printf '\x01' | dd of="$work/models/e2e-brain/0.0.1/weights.safetensors" bs=1 seek=2000 conv=notrunc status=none
expect 65 "sha256" -- "$segnode" segment --model e2e-brain --input "$input" --output "$work/x.nii" --models-dir "$work/models"
expect 65 "FAIL CHECKSUM" -- "$segnode" models --verify --models-dir "$work/models"
echo "segment end to end: ok"
