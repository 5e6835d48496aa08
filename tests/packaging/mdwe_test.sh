#!/usr/bin/env bash
# Why the unit does not set MemoryDenyWriteExecute=true, measured on this CPU: runs the same
# `segnode segment` with and without the kernel's MDWE (prctl PR_SET_MDWE, the same rule systemd
# enforces: no memory may become executable after it was writable). oneDNN's JIT needs exactly
# that. The test fails when the unit and the measurement disagree: if a future oneDNN runs under
# MDWE, it says to turn the protection on.
#   mdwe_test.sh SEGNODE UNIT_FILE SHARED_DATA
set -euo pipefail
segnode=$1 unit=$2 data=$3
series=$data/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom
[[ -d $series ]] || { echo "SKIPPED: $series is absent"; exit 0; }
command -v cc >/dev/null || { echo "SKIPPED: no C compiler for the prctl wrapper"; exit 0; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/mdwe.c" <<'C'
#include <stdio.h>
#include <sys/prctl.h>
#include <unistd.h>
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif
int main(int argc, char** argv) {
  (void)argc;
  if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0) { perror("prctl(PR_SET_MDWE)"); return 77; }
  execvp(argv[1], argv + 1);
  perror("exec");
  return 127;
}
C
cc -O2 -o "$dir/mdwe" "$dir/mdwe.c"
models=$(cd "$(dirname "$0")/../.." && pwd)/etc/models
run() { "$@" "$segnode" segment --models-dir "$models" --model brain-mr-student-w4 --input "$series" --output "$dir/out.nii.gz"; }
run env >"$dir/plain.log" 2>&1 || { cat "$dir/plain.log"; echo "FAIL: segment without MDWE"; exit 1; }
if run "$dir/mdwe" >"$dir/mdwe.log" 2>&1; then under=runs; else
  rc=$?
  [[ $rc == 77 ]] && { echo "SKIPPED: this kernel has no PR_SET_MDWE (6.3+)"; exit 0; }
  under=fails
fi
echo "segment under MemoryDenyWriteExecute: $under ($(tail -1 "$dir/mdwe.log"))"
if grep -q "^MemoryDenyWriteExecute=true" "$unit"; then set_in_unit=yes; else set_in_unit=no; fi
if [[ $under == fails && $set_in_unit == yes ]]; then echo "FAIL: the unit sets MemoryDenyWriteExecute, and inference fails under it"; exit 1; fi
if [[ $under == runs && $set_in_unit == no ]]; then echo "FAIL: inference runs under MDWE now: set MemoryDenyWriteExecute=true in $unit"; exit 1; fi
echo "mdwe_test: the unit agrees with the measurement (MemoryDenyWriteExecute set: $set_in_unit)"
