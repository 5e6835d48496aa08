#!/usr/bin/env bash
# Peak memory of the daemon's whole path on the largest series processing.max_voxels admits by
# default: the 512 x 512 x 600 noise CT of bench/memory.sh, written as 600 CT files
# (bench/nifti-to-ct-dicom.py), sent with storescu to a segnoded that loads it from DICOM, segments
# it with the CT route's model and writes its SEG (send_flagged: noise is implausible, and a
# rejected job would skip the SEG writer, whose frames are part of what this measures). Reports segnoded's peak RSS (VmHWM) and
# the job's timings (docs/reliability.md "Inference memory").
#   [ON_IMPLAUSIBLE=reject] [ORIENTATION=flipped] bash bench/memory-daemon.sh [THREADS]   (needs a full build: segnoded)
# ON_IMPLAUSIBLE=reject stops the job before the SEG writer: the difference is the writer's share.
# ORIENTATION=flipped writes rows and columns the other way (ImageOrientationPatient -1\0\0\0\-1\0):
# the loader reorients the grid before the network, one more copy of the input.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
orientation=${ORIENTATION:-standard}
[[ $orientation == standard || $orientation == flipped ]] ||
  { echo "memory-daemon: ORIENTATION is standard or flipped, not $orientation" >&2; exit 64; }
work=$PWD/build/bench-memory-daemon-$orientation
bin=$PWD/build/bin
for tool in "$bin/segnoded" storescu curl; do
  command -v "$tool" >/dev/null || { echo "memory-daemon: $tool missing (full build; dcmtk, curl)" >&2; exit 69; }
done
/usr/bin/python3 -c 'import pydicom, numpy' 2>/dev/null || { echo "memory-daemon: python3-pydicom missing" >&2; exit 69; }
rm -rf "$work/var" && mkdir -p "$work/var"
if [[ ! -f $work/ct/0599.dcm ]]; then
  /usr/bin/python3 - "$work/ct512.nii" "$orientation" <<'PY'
import sys
import nibabel as nib, numpy as np
a = np.random.default_rng(0).normal(40, 200, (512, 512, 600)).astype(np.int16)  # as bench/memory.sh
# Standard: x and y run right-to-left and front-to-back (RAS -x, -y): in DICOM's LPS, the axial
# orientation (1,0,0 / 0,1,0) a scanner writes, which the loader takes without reorienting.
# Flipped (+x, +y): -1,0,0 / 0,-1,0 in LPS.
step = -0.8 if sys.argv[2] == "standard" else 0.8
nib.save(nib.Nifti1Image(a, np.diag([step, step, 1.0, 1.0])), sys.argv[1])
PY
  /usr/bin/python3 bench/nifti-to-ct-dicom.py "$work/ct512.nii" "$work/ct" "memory bench noise 512x512x600"
  rm "$work/ct512.nii"
fi
# The default config with its paths, ports and one worker here; the CT route sends what it makes
# flagged; the destination is a port nobody listens on (the SEG waits in the outbox).
sed -e "s|port: 11112 |port: 11191 |; s|port: 8104 |port: 8191 |; s|port: 4242}|port: 4291}|" \
    -e "s|spool_dir: var/spool|spool_dir: $work/var/spool|; s|database: var/segnode.db|database: $work/var/segnode.db|" \
    -e "s|output_dir: var/out|output_dir: $work/var/out|; s|models_dir: etc/models |models_dir: $PWD/etc/models |" \
    -e "s|workers: 0 |workers: 1 |; s|threads_per_worker: 0 |threads_per_worker: $threads |; s|quiet_period_s: 10 |quiet_period_s: 2 |" \
    etc/segnode.yaml >"$work/segnode.yaml"
/usr/bin/python3 - "$work/segnode.yaml" <<'PY'
import os, sys, yaml
path = sys.argv[1]
text = open(path).read()
cfg = yaml.safe_load(text)
for route in cfg["routes"]:
    if route["name"] == "abdomen-ct":
        route["on_implausible"] = os.environ.get("ON_IMPLAUSIBLE", "send_flagged")
open(path, "w").write(yaml.safe_dump(cfg, sort_keys=False))
PY
"$bin/segnoded" --config "$work/segnode.yaml" --check-config >/dev/null
"$bin/segnoded" --config "$work/segnode.yaml" >"$work/segnoded.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 120); do curl -sf 127.0.0.1:8191/readyz >/dev/null && break; sleep 1; done
curl -sf 127.0.0.1:8191/readyz >/dev/null || { tail "$work/segnoded.log"; echo "memory-daemon: not ready after 120 s" >&2; exit 70; }
t0=$(date +%s)
storescu -aet STORESCU -aec SEGNODE +sd 127.0.0.1 11191 "$work/ct"
state=''
for _ in $(seq 1800); do  # at most an hour
  state=$(curl -s 127.0.0.1:8191/api/jobs | /usr/bin/python3 -c '
import json, sys
jobs = json.load(sys.stdin)
jobs = jobs.get("jobs", jobs) if isinstance(jobs, dict) else jobs
ended = [j for j in jobs if j.get("state") in ("done", "failed", "rejected")]
print(json.dumps(ended[0]) if ended else "")')
  [[ -n $state ]] && break
  sleep 2
done
echo "job: $state"
echo "seconds from first C-STORE to the job's end: $(( $(date +%s) - t0 ))"
grep -E "VmHWM|VmRSS" /proc/$pid/status
