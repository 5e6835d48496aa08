#!/usr/bin/env bash
# Learning curves of a distillation run from its committed state: validation Dice (synth-t1) of
# each student's EMA (solid) and raw weights (dashed, where recorded) against samples seen.
# Needs gnuplot (Debian: gnuplot-nox).
#   bash training/gpu/plot-curves.sh training/state/RUN OUT.png
set -euo pipefail
run=$1 out=$2
batch=$(sed -n 's/^batch: //p' "$run/state.yaml")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# One file per network: samples, mean Dice.
tail -n +2 "$run/validation.csv" | awk -F, -v b="$batch" -v d="$tmp" '{ if ($3 == "ema") print $1 * b, $5 > (d "/" $2 ".dat"); else print $1 * b, $5 > (d "/" $2 "-raw.dat") }'
plots=""
n=0
for f in "$tmp"/*.dat; do
  name=$(basename "$f" .dat)
  [[ $name == *-raw ]] && continue
  n=$((n + 1))
  plots+="${plots:+, }'$f' using 1:2 with linespoints lc $n title '${name#brain-mr-student-} (EMA)'"
  [ -f "$tmp/$name-raw.dat" ] && plots+=", '$tmp/$name-raw.dat' using 1:2 with linespoints dt 2 lc $n title 'weights'"
done
gnuplot <<GP
set terminal pngcairo size 900,520 font "sans,11"
set output "$out"
set title "$(basename "$run"): validation Dice (held-out synthetic T1), EMA and raw weights"
set xlabel "training samples"
set ylabel "mean Dice, 32 structures"
set key left top
set grid
plot $plots
GP
echo "$out"
