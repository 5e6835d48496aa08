#!/usr/bin/env bash
# Installs a FLARE22 CT bundle that a training run wrote (issue 15; docs/models.md, "How the CT
# bundles are installed"), the steps the teacher 0.2.0 was installed with:
#   1. each organ's post-processing chosen by nnU-Net's rule (keep an organ's largest piece where
#      that does not lower its mean Dice over the validation groups): `evaluate` with and without
#      it, `export --postprocessing-check`;
#   2. the chosen bundle measured again as it now runs, in fp32 and bf16, and exported with its
#      metrics, the bf16 guard and CT plausibility ranges from the 42 training maps (export
#      refuses them if a validation case is implausible) into MODELS_DIR.
# The 17 validation cases (training/eval/abdomen-ct-cases.yaml) are made first if missing
# (training/ct/validation-data.sh). Reports: build/ct-install/NAME-VERSION/.
# BESIDE: bundles evaluated before it in the fp32 run, so that its report gives the retention
# against the first (a student beside its teacher).
#   [BESIDE="DIR ..."] bash training/ct/install.sh BUNDLE_DIR [MODELS_DIR]      (MODELS_DIR: etc/models)
# CPU only; four `evaluate` runs: about 12 minutes for the teacher, 5 for w2, 3 for w4 on 2 cores.
set -euo pipefail
[ $# -ge 1 ] || { sed -n 14p "$0" >&2; exit 64; }  # EX_USAGE
bundle=$(cd "$1" && pwd) models=${2:-etc/models}
cd "$(dirname "$0")/../.."
D=build/bin/segnode-distill data=build/models-eval/data
maps=$(cd ../shared/data/abdomen_ct/flare22_label_maps && pwd)
name=$(sed -n 's/^name: //p' "$bundle/bundle.yaml") version=$(sed -n 's/^version: //p' "$bundle/bundle.yaml")
if [ -z "$name" ] || [ -z "$version" ]; then echo "$bundle/bundle.yaml: no name or version" >&2; exit 65; fi
work=build/ct-install/$name-$version
rm -rf "$work" && mkdir -p "$work"
held=$(grep -v '^#' training/ct/flare22-split.txt)
bash training/ct/validation-data.sh "$data"
evaluate() {
  $D evaluate --cases training/eval/abdomen-ct-cases.yaml --data-root "$data" --out "$work/$1" "${@:2}" >"$work/$1.log" 2>&1 ||
    { tail -5 "$work/$1.log" >&2; return 1; }
}
metrics=$name-$version.metrics.yaml
evaluate with-pp --precision fp32 --bundles "$bundle"
evaluate without-pp --precision fp32 --postprocessing none --bundles "$bundle"
$D export --bundle "$bundle" --metrics "$work/with-pp/$metrics" \
  --postprocessing-check "$work/without-pp/$metrics" --models-dir "$work/chosen"
chosen=$work/chosen/$name/$version
# shellcheck disable=SC2086
evaluate fp32 --precision fp32 --bundles ${BESIDE:-} "$chosen"
evaluate bf16 --precision bf16 --bundles "$chosen"
training=$(printf '%s\n' "$maps"/*.nii.gz | grep -v -F -f <(echo "$held") | paste -sd,)
$D export --bundle "$chosen" --metrics "$work/fp32/$metrics" --guard "bf16=$work/bf16/$metrics" \
  --plausibility-labels "$training" --models-dir "$models"
head -3 "$work/fp32/report.md"
echo "installed: $models/$name/$version (reports: $work)"
