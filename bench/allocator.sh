#!/usr/bin/env bash
# Does a general-purpose allocator give what engine/TensorCache gives (issue 11)? One volume
# segmented by `segnode bench` in four allocator set-ups, interleaved round by round so that the
# machine's drift falls on all of them alike:
#   cache     the default: TensorCache is LibTorch's CPU allocator
#   glibc     no cache; glibc told to keep freed memory (MALLOC_MMAP_MAX_=0: no mmap per block,
#             MALLOC_TRIM_THRESHOLD_=4 GiB: no trim of the heap top)
#   jemalloc  no cache; Debian's jemalloc preloaded (its default decay returns memory after 10 s)
#   none      no cache, glibc defaults (each large block a fresh mmap)
# Prints one line per set-up: median seconds per volume, peak RSS, and the ratio to `cache`.
#   [SETUPS="cache glibc"] bash bench/allocator.sh [ROUNDS] [MODEL] [INPUT]   (3, brain-mr-student-w4, Colin27)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} model=${2:-brain-mr-student-w4} input=${3:-../shared/data/brain_mr/colin27_mricron/ch2.nii.gz}
[[ -f $input ]] || { echo "allocator.sh: $input is absent" >&2; exit 66; }
jemalloc=$(ls /usr/lib/*/libjemalloc.so.2 2>/dev/null | head -1)
[[ -n $jemalloc ]] || { echo "allocator.sh: libjemalloc2 is not installed (apt-get install libjemalloc2)" >&2; exit 69; }
segnode=build/bin/segnode
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run() {  # run SETUP: one bench process; appends "seconds rss_kib" to $out/SETUP
  local env=()
  case $1 in
    cache) ;;
    glibc) env=(SEGNODE_NO_TENSOR_CACHE=1 MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=4294967296) ;;
    jemalloc) env=(SEGNODE_NO_TENSOR_CACHE=1 LD_PRELOAD="$jemalloc") ;;
    none) env=(SEGNODE_NO_TENSOR_CACHE=1) ;;
  esac
  env "${env[@]}" /usr/bin/time -f "%M" -o "$out/rss" "$segnode" bench --models "$model" --input "$input" \
    --repeat 2 --warmup 1 --json >"$out/json"
  echo "$(sed -n 's/.*"median_seconds":\([0-9.e+-]*\).*/\1/p' "$out/json") $(cat "$out/rss")" >>"$out/$1"
}

setups=(${SETUPS:-cache glibc jemalloc none})
for ((r = 0; r < rounds; r++)); do
  for s in "${setups[@]}"; do run "$s"; done
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
base=$(cut -d' ' -f1 "$out/cache" | median)
for s in "${setups[@]}"; do
  sec=$(cut -d' ' -f1 "$out/$s" | median)
  rss=$(cut -d' ' -f2 "$out/$s" | sort -n | tail -1)
  printf '%-9s median_s=%.2f peak_rss_mib=%d vs_cache=%.2f\n' "$s" "$sec" $((rss / 1024)) "$(echo "$sec / $base" | bc -l)"
done
