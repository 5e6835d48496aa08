#!/usr/bin/env bash
# scripts/check-arrows.sh passes on the source tree, and refuses a copy of it into which a
# forbidden arrow was written (so the check is known to be able to fail).
set -uo pipefail
src=$1
check=$src/scripts/check-arrows.sh
bash "$check" "$src" || { echo "FAIL: the source tree breaks an arrow"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for d in common engine storage training daemon; do cp -r "$src/$d" "$tmp/"; done
sed -i '0,/^#include/s//#include "storage\/Index.h"\n#include/' "$tmp/daemon/dicom/StoreScp.h"
sed -i '0,/^#include/s//#include <dcmtk\/dcmdata\/dctk.h>\n#include/' "$tmp/daemon/routing/Router.cpp"
out=$(bash "$check" "$tmp")
rc=$?
echo "$out"
[ $rc = 1 ] || { echo "FAIL: the injected arrows were not refused (rc $rc)"; exit 1; }
grep -q "daemon/dicom/StoreScp.h:.*may not include storage/Index.h" <<<"$out" || { echo "FAIL: dicom -> storage not named"; exit 1; }
grep -q "daemon/routing/Router.cpp:.*<dcmtk/dcmdata/dctk.h>" <<<"$out" || { echo "FAIL: DCMTK in routing not named"; exit 1; }
echo "PASS: the forbidden arrows are refused"
