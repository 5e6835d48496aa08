#!/usr/bin/env bash
# The installed models say "not mine" to wrong inputs (issue 16): bench/plausibility.sh makes a
# striped phantom and noise from ../shared/data and runs `segnode segment`; the brain student must
# find the real T1 plausible and reject the phantom, the abdominal CT and the noise, and the CT
# teacher (the default CT route's model) and its installed w2 student must find the real abdominal
# CT plausible and reject the brain and noise in HU.
#   plausibility_e2e.sh SEGNODE SOURCE_DIR SHARED_DATA
set -euo pipefail
segnode=$1 src=$2 shared=$3
source "$src/tests/cli/e2e_common.sh"
require_file "$shared/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom/$(ls "$shared/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom" 2>/dev/null | head -1)"
require_file "$shared/abdomen_ct/totalseg_example_ct/example_ct.nii.gz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
table=$(cd "$src" && CT_MODELS="abdomen-ct-teacher abdomen-ct-student-w2" SEGNODE=$segnode bash bench/plausibility.sh etc/models "$work")
echo "$table"
row() { grep -F "| $1 | $2" <<<"$table" || fail "no row for $1 on $2"; }
row brain-mr-student-w4 "real T1" | grep -q "| plausible;" || fail "the real T1 was not plausible"
for input in "striped phantom" "abdominal CT" "pure noise"; do
  row brain-mr-student-w4 "$input" | grep -q "| implausible: " || fail "brain-mr-student-w4 accepted the $input"
done
for m in abdomen-ct-teacher abdomen-ct-student-w2; do
  row $m "abdominal CT" | grep -q "| plausible;" || fail "$m refused the real abdominal CT"
  row $m "brain T1" | grep -q "| implausible: " || fail "$m accepted the brain T1"
  row $m "pure noise" | grep -q "| implausible: " || fail "$m accepted noise in HU"
done
echo "every wrong input refused with its reasons"
