#!/usr/bin/env bash
# Fuzzes what the node does with received bytes (DICOM admission, pixel decoding, series loading:
# tests/fuzz/) with libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, seeded with files
# of every series in ../shared/data/dicom. A crash, a sanitizer report, a leak, more than 2 GB of
# memory or 10 s on one input is a failure: the input is copied to tests/fuzz/regressions/ (which
# the ctest replays from then on) and the script exits 1.
#   tests/fuzz/fuzz.sh [SECONDS]   default 600 (the report's run); scripts/test.sh runs 60
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-600}
out=build-fuzz
cmake -S tests/fuzz -B $out -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C $out >/dev/null
mkdir -p $out/corpus $out/artifacts
shared=../shared/data/dicom
if [[ -d $shared ]]; then
  for series in "$shared"/*/; do  # three files of each series, the first time
    find "$series" -type f -name '*.dcm' -size -400k | sort | sed -n 1,3p | while read -r f; do
      seed=$out/corpus/seed-$(basename "$series")-$(basename "$f")
      [[ -e $seed ]] || cp "$f" "$seed"
    done
  done
fi
log=$out/fuzz-$(date +%Y%m%d-%H%M%S).log
set +e
$out/fuzz_ingest -max_total_time="$seconds" -max_len=400000 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix=$out/artifacts/ $out/corpus tests/fuzz/regressions >"$log" 2>&1
rc=$?
set -e
grep -E "^stat::(number_of_executed_units|peak_rss_mb)|^Done" "$log" || true
echo "corpus: $(ls $out/corpus | wc -l) inputs; log: $log"
if (( rc != 0 )); then
  for a in $out/artifacts/*; do [[ -e $a ]] && cp "$a" tests/fuzz/regressions/ && echo "new regression file: tests/fuzz/regressions/$(basename "$a")"; done
  grep -m1 -A20 "ERROR:\|==ERROR\|runtime error" "$log" >&2 || tail -30 "$log" >&2
  echo "fuzz: FAILED (exit $rc)" >&2
  exit 1
fi
echo "fuzz: no crash in $seconds s"
