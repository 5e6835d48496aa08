#!/usr/bin/env bash
# How much of a CT bundle's pancreas miss on the real CT comes from the pancreas's intensity
# (docs/models.md, CT section, "The pancreas and the non-contrast phase"). The one real CT is
# unenhanced and its pancreas reads -6 HU (median) where the synthetic non-contrast pancreas reads
# about 31. Two synthetic non-contrast images of each of the 8 held-out FLARE22 maps, the same seed:
# "standard" with the tree's priors, "fatty" with only the pancreas's non-contrast prior moved to
# the real case's (mean -5 HU, spread 28: fatty infiltration and partial volume with fat); the
# bundles evaluated on both. Non-contrast is a phase drawn in training, so the standard group is
# also the held-out measure in the real CT's phase.
#   bash bench/ct-noncontrast.sh [BUNDLE_DIR ...]     (default: the installed CT teacher)
# CPU only; about 6 minutes for the teacher on 2 cores (bf16, as the node picks it here).
set -euo pipefail
cd "$(dirname "$0")/.."
newest_teacher=$(ls -d etc/models/abdomen-ct-teacher/*/ | sort -V | tail -1)
bundles=("${@:-${newest_teacher%/}}")
D=build/bin/segnode-distill out=build/ct-noncontrast
maps=../shared/data/abdomen_ct/flare22_label_maps
[ -d "$maps" ] || { echo "skipped: $maps is missing"; exit 0; }
held=$(grep -v '^#' training/ct/flare22-split.txt | sed "s|^|$maps/|; s|\$|.nii.gz|" | paste -sd,)
rm -rf "$out" && mkdir -p "$out"
awk -F'\t' 'BEGIN { OFS = "\t" } $1 == "label" && $3 == "pancreas" && $4 == "noncontrast" { $5 = -5; $7 = 28 } { print }' \
  training/ct/abdomen-ct-generation.tsv >"$out/fatty-pancreas.tsv"
cmp -s training/ct/abdomen-ct-generation.tsv "$out/fatty-pancreas.tsv" && { echo "no pancreas row changed" >&2; exit 65; }
echo "cases:" >"$out/cases.yaml"
for arm in standard fatty; do
  table=training/ct/abdomen-ct-generation.tsv
  [ $arm = fatty ] && table=$out/fatty-pancreas.tsv
  $D synth --template etc/templates/abdomen-ct-flare13.yaml --labels "$held" --table "$table" \
    --recipes ct-noncontrast --out "$out/$arm" --seed 2000 --device cpu >/dev/null
  for image in "$out/$arm"/*_image.nii.gz; do
    f=$(basename "$image") && n=$(echo "$f" | cut -d_ -f3)
    echo "  - {name: $n-$arm, group: synth-ct-nc-$arm, image: $arm/$f, reference: $arm/${f/_image/_labels}}" >>"$out/cases.yaml"
  done
done
$D evaluate --cases "$out/cases.yaml" --data-root "$out" --out "$out/report" --precision bf16 --bundles "${bundles[@]}" >/dev/null
sed -n "1,/^$/p" "$out/report/report.md"
echo "pancreas, mean Dice per bundle and group:"
awk -F, '$4 == "\"pancreas\"" { s[$1 FS $3] += $5; n[$1 FS $3]++ } END { for (k in s) printf "  %s %.3f\n", k, s[k] / n[k] }' \
  "$out/report/report.csv" | sort
