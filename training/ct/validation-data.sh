#!/usr/bin/env bash
# The data of training/eval/abdomen-ct-cases.yaml under DATA_DIR: `shared` (a link to
# ../shared/data, for the real CT) and `val-ct`, the synthetic pairs of the 8 held-out FLARE22
# maps (training/ct/flare22-split.txt) in the late arterial phase and in portal-venous with 6 mm
# slices (neither drawn in training), seed 2000. The one recipe of the CT validation cases, used
# by bench/models.sh and training/ct/install.sh. Skips the synthesis when val-ct is there.
#   bash training/ct/validation-data.sh DATA_DIR
set -euo pipefail
[ $# -eq 1 ] || { sed -n 7p "$0" >&2; exit 64; }  # EX_USAGE
data=$1
cd "$(dirname "$0")/../.."
shared=$(cd ../shared/data && pwd)
mkdir -p "$data" && ln -sfn "$shared" "$data/shared"
[ -d "$data/val-ct" ] && exit 0
maps=$shared/abdomen_ct/flare22_label_maps
held=$(grep -v '^#' training/ct/flare22-split.txt | sed "s|^|$maps/|; s|\$|.nii.gz|" | paste -sd,)
build/bin/segnode-distill synth --template etc/templates/abdomen-ct-flare13.yaml --labels "$held" \
  --table training/ct/abdomen-ct-generation.tsv --recipes ct-arterial,ct-portal-venous-6mm \
  --out "$data/val-ct" --seed 2000 --device cpu >/dev/null
