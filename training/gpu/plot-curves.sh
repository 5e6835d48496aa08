#!/usr/bin/env bash
# Learning curves of one or more training runs from their committed state: validation Dice of each
# network's EMA (solid) and raw weights (dashed, where recorded) against samples seen, one colour
# per network (per run when several runs are drawn: an ablation's arms side by side).
# Needs gnuplot (Debian: gnuplot-nox).
#   bash training/gpu/plot-curves.sh training/state/RUN [training/state/RUN...] OUT.png
set -euo pipefail
[ $# -ge 2 ] || { sed -n 6p "$0" >&2; exit 64; }  # EX_USAGE
out=${!#}
runs=("${@:1:$#-1}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plots="" n=0 c=0
for run in "${runs[@]}"; do
  batch=$(sed -n 's/^batch: //p' "$run/state.yaml")
  # Several runs: name each curve by its run, since their networks share names ("teacher").
  prefix=""; [ ${#runs[@]} -gt 1 ] && prefix="$(basename "$run") "
  # One file per network: samples, mean Dice.
  tail -n +2 "$run/validation.csv" | awk -F, -v b="$batch" -v d="$tmp/$n-" \
    '{ f = d $2 ($3 == "ema" ? "" : "-raw") ".dat"; print $1 * b, $5 > f }'
  for f in "$tmp/$n-"*.dat; do
    name=$(basename "$f" .dat); name=${name#"$n-"}
    [[ $name == *-raw ]] && continue
    c=$((c + 1))
    title="$prefix${name#brain-mr-student-}"
    plots+="${plots:+, }'$f' using 1:2 with linespoints lc $c title '$title (EMA)'"
    [ -f "$tmp/$n-$name-raw.dat" ] && plots+=", '$tmp/$n-$name-raw.dat' using 1:2 with linespoints dt 2 lc $c title 'weights'"
  done
  n=$((n + 1))
done
# The group and structure count come from the records (brain: synth-t1, 32; CT: 13 organs).
first=${runs[0]}/validation.csv
group=$(awk -F, 'NR == 2 { print $4 }' "$first")
structures=$(head -1 "$first" | tr , '\n' | grep -c '^dice_')
names=$(for run in "${runs[@]}"; do basename "$run"; done | paste -sd, | sed 's/,/, /g')
gnuplot <<GP
set terminal pngcairo size 1100,520 font "sans,11"
set output "$out"
set title "$names: validation Dice ($group), EMA and raw weights"
set xlabel "training samples"
set ylabel "mean Dice, $structures structures"
set key outside right top
set grid
plot $plots
GP
echo "$out"
