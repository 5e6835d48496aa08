#!/usr/bin/env bash
# Two students' validation curves at equal iterations, from their runs' committed validation.csv:
# EMA weights, one validation group (GROUP: synth-t1, the brain's; synth-ct-portal-venous for CT),
# every iteration both runs recorded (the last record of one). The decision table of an experiment
# against its baseline (brain-kd-ta's w4 against brain-kd-0.4's, docs/models.md).
#   [GROUP=NAME] bash training/gpu/compare-curves.sh training/state/RUN_A NETWORK_A training/state/RUN_B NETWORK_B
set -euo pipefail
[ $# -eq 4 ] || { sed -n 2,6p "$0" >&2; exit 64; }  # EX_USAGE
group=${GROUP:-synth-t1}
ema() { tail -n +2 "$1/validation.csv" | awk -F, -v n="$2" -v g="$group" '$2 == n && $3 == "ema" && $4 == g { print $1, $5 }'; }
printf "%-9s %-8s %-8s %s\n" iteration "A" "B" "A - B"
awk 'NR == FNR { b[$1] = $2; next } ($1 in b) { a[$1] = $2 }
     END { for (i in a) printf "%-9d %-8.3f %-8.3f %+.3f\n", i, a[i], b[i], a[i] - b[i] }' \
  <(ema "$3" "$4") <(ema "$1" "$2") | sort -n
echo "A: $2 of $(basename "$1"); B: $4 of $(basename "$3"); group $group"
