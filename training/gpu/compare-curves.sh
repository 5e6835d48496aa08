#!/usr/bin/env bash
# Two students' validation curves at equal iterations, from their runs' committed validation.csv:
# EMA weights, one validation group (GROUP: synth-t1, the brain's; synth-ct-portal-venous for CT),
# every iteration both runs recorded (the last record of one). The decision table of an experiment
# against its baseline (brain-kd-ta's w4 against brain-kd-0.4's, docs/models.md).
#   [GROUP=NAME] [MARGIN=0.03 FROM=1500] bash training/gpu/compare-curves.sh training/state/RUN_A NETWORK_A training/state/RUN_B NETWORK_B
# With MARGIN and FROM, the last line applies the rule set before an experiment runs: A continues
# only if it is MARGIN or more above B at the last common iteration and above B at every common
# iteration from FROM on (docs/models.md, "Reallocated widths").
set -euo pipefail
[ $# -eq 4 ] || { sed -n 2,9p "$0" >&2; exit 64; }  # EX_USAGE
group=${GROUP:-synth-t1}
ema() { tail -n +2 "$1/validation.csv" | awk -F, -v n="$2" -v g="$group" '$2 == n && $3 == "ema" && $4 == g { print $1, $5 }'; }
table=$(awk 'NR == FNR { b[$1] = $2; next } ($1 in b) { a[$1] = $2 }
     END { for (i in a) printf "%-9d %-8.3f %-8.3f %+.3f\n", i, a[i], b[i], a[i] - b[i] }' \
  <(ema "$3" "$4") <(ema "$1" "$2") | sort -n)
printf "%-9s %-8s %-8s %s\n" iteration "A" "B" "A - B"
echo "$table"
echo "A: $2 of $(basename "$1"); B: $4 of $(basename "$3"); group $group"
[ -n "${MARGIN:-}" ] || exit 0
echo "$table" | awk -v m="$MARGIN" -v from="${FROM:-0}" '
  NF == 4 { last = $1; diff = $4 + 0; if ($1 >= from) { seen = 1; if (diff <= 0 && !below) below = $1 } }
  END {
    if (last == "") { print "decision: none (no common iteration)"; exit }
    if (!seen) { printf "decision: not yet (last common iteration %d is before %d)\n", last, from; exit }
    if (below) { printf "decision: stop (A is not above B at %d)\n", below; exit }
    if (diff < m) { printf "decision: stop (A - B = %+.3f at %d, below the margin %.3f)\n", diff, last, m; exit }
    printf "decision: continue (A - B = %+.3f at %d, above B from %d on)\n", diff, last, from }'
