#!/usr/bin/env bash
# The CT normalisation of a plan made from label maps alone (issue 15) is nnU-Net's statistics of
# the synthesised foreground: `plan --table` on one FLARE22 map must give the percentiles, mean
# and std that the same images give when `synth` writes them (seeds 3000 + phase index).
#   ct_statistics_e2e.sh SEGNODE_DISTILL SHARED_DATA SOURCE_DIR
set -euo pipefail
distill=$1 shared=$2 src=$3
source "$src/tests/cli/e2e_common.sh"
map=$shared/abdomen_ct/flare22_label_maps/FLARE22_Tr_0001.nii.gz
require_file "$map"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--template "$src/etc/templates/abdomen-ct-flare13.yaml" --labels "$map" --table "$src/training/ct/abdomen-ct-generation.tsv")
"$distill" plan "${common[@]}" --phases noncontrast,portal_venous --out "$work/plan.yaml" >/dev/null 2>"$work/plan.log" ||
  fail "plan: $(grep -v Warning "$work/plan.log" | tail -3)"
"$distill" synth "${common[@]}" --device cpu --out "$work/nc" --seed 3000 --recipes ct-noncontrast >/dev/null 2>&1
"$distill" synth "${common[@]}" --device cpu --out "$work/pv" --seed 3001 --recipes ct-portal-venous >/dev/null 2>&1
/usr/bin/python3 - "$work" <<'PY' || fail "plan statistics differ from the synthesised foreground's"
import glob, sys
import nibabel as nib, numpy as np, yaml
work = sys.argv[1]
fg = []
for image in sorted(glob.glob(f"{work}/*/*_image.nii.gz")):
    img = np.asanyarray(nib.load(image).dataobj).astype(np.float64)
    lab = np.asanyarray(nib.load(image.replace("_image", "_labels")).dataobj)
    fg.append(img[lab > 0])
fg = np.sort(np.concatenate(fg))
at = lambda p: fg[int(p * (fg.size - 1))]
want = {"clip": [at(0.005), at(0.995)], "mean": fg.mean(), "std": fg.std(ddof=1)}
ct = yaml.safe_load(open(f"{work}/plan.yaml"))["ct"]
print("plan:", ct, "\nsynthesised pairs:", want)
assert np.allclose(ct["clip"], want["clip"], atol=1e-3), "clip"
assert abs(ct["mean"] - want["mean"]) < 1e-3 and abs(ct["std"] - want["std"]) < 1e-3, "mean/std"
# Sanity: the window holds soft tissue and its enhancement and stops short of air (edges of
# organs next to gas, blurred by the scanner model, reach a few hundred HU below 0).
assert -1000 < want["clip"][0] < 0 and 100 < want["clip"][1] < 500, "clip window outside the abdominal range"
PY
echo "CT statistics reproduced from the synthesised foreground"
