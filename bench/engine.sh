#!/usr/bin/env bash
# Engine benchmark (issue: engine foundation). On Colin27 ch2 (181x217x181, 1 mm), tile 128^3,
# step 0.5, 2 threads, random weights (speed does not depend on training):
#  1. `segnode bench`: nnU-Net default teacher (32..320) vs its 1/4-width student (8..80), side by
#     side in one process, interleaved, after warm-up -> student_vs_teacher (seconds ratio).
#  2. NIfTI in -> NIfTI out, segnode vs the same pipeline in Python (bench/reference_segment.py,
#     Debian's python3-torch), alternating, for both networks -> speedup_vs_python (python/segnode
#     seconds, the smaller of the two networks' ratios) and rss_vs_python (segnode/python peak RSS,
#     the larger of the two). Also prints how many voxels the two label maps share.
# Usage: bench/engine.sh [--repeat N]    (default 1; about 10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=1
[[ ${1:-} == --repeat ]] && repeat=$2
threads=2
input=../shared/data/brain_mr/colin27_mricron/ch2.nii.gz
[[ -f $input ]] || { echo "engine.sh: $input is absent" >&2; exit 66; }
scripts/install-deps.sh --tests >&2
dpkg-query -W python3-torch >/dev/null 2>&1 || { apt-get install -y -q --no-install-recommends python3-torch >&2; }
scripts/build.sh >&2
segnode=build/bin/segnode
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
template=etc/templates/brain-mr-synthseg.yaml
$segnode models init --template $template --name teacher --version 0.0.1 --models-dir "$work/models" >&2
$segnode models init --template $template --name student-w4 --version 0.0.1 --width-divisor 4 --models-dir "$work/models" >&2

echo "== segnode bench (in-process, interleaved, repeat $repeat) ==" >&2
$segnode bench --models teacher,student-w4 --input "$input" --threads $threads --repeat "$repeat" \
  --models-dir "$work/models" --json | tee "$work/bench.json" >&2

echo "== NIfTI in -> NIfTI out: segnode vs Python reference ==" >&2
measure() {  # measure NAME command... -> appends "NAME seconds peak_kb" to results
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" 2>>"$work/log" >&2
  echo "$name $(cat "$work/time")" | tee -a "$work/results" >&2
}
for r in $(seq "$repeat"); do
  for m in student-w4 teacher; do
    measure "segnode.$m" $segnode segment --model $m --input "$input" --output "$work/segnode_$m.nii.gz" \
      --threads $threads --models-dir "$work/models"
    measure "python.$m" /usr/bin/python3 bench/reference_segment.py --bundle "$work/models/$m/0.0.1" \
      --input "$input" --output "$work/python_$m.nii.gz" --threads $threads
  done
done

/usr/bin/python3 - "$work" <<'PY'
import json, sys, statistics as st, nibabel as nib, numpy as np
work = sys.argv[1]
bench = {j["model"]: j for j in map(json.loads, open(f"{work}/bench.json"))}
svt = bench["student-w4"]["median_seconds"] / bench["teacher"]["median_seconds"]
res = {}
for line in open(f"{work}/results"):
    name, sec, kb = line.split()
    res.setdefault(name, []).append((float(sec), int(kb)))
speed, rss = [], []
for m in ("student-w4", "teacher"):
    s, p = res[f"segnode.{m}"], res[f"python.{m}"]
    ss, ps = st.median(x[0] for x in s), st.median(x[0] for x in p)
    sr, pr = max(x[1] for x in s), max(x[1] for x in p)
    a = np.asarray(nib.load(f"{work}/segnode_{m}.nii.gz").dataobj)
    b = np.asarray(nib.load(f"{work}/python_{m}.nii.gz").dataobj)
    print(f"{m}: segnode {ss:.1f} s {sr/1024:.0f} MiB | python {ps:.1f} s {pr/1024:.0f} MiB | "
          f"speedup {ps/ss:.2f}x, rss ratio {sr/pr:.2f}, label agreement {(a == b).mean()*100:.4f} %", file=sys.stderr)
    speed.append(ps / ss); rss.append(sr / pr)
print(f"teacher {bench['teacher']['median_seconds']:.1f} s/volume, student {bench['student-w4']['median_seconds']:.1f} s/volume "
      f"(params {bench['teacher']['parameters']} vs {bench['student-w4']['parameters']})", file=sys.stderr)
print(f"student_vs_teacher={svt:.2f} speedup_vs_python={min(speed):.2f} rss_vs_python={max(rss):.2f}")
PY
