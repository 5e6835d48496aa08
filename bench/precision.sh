#!/usr/bin/env bash
# Self-configured inference against today's settings (issue 14), on this machine. For each
# installed brain student: the precisions it allows (fp32 always; bf16 and int8 only with a passed
# Dice guard in its bundle, int8 also with its calibration), its default tile step, and seconds
# per volume on the Philips T1 of every allowed precision at the bundle's step against fp32 at
# step 0.5 (the settings before issue 14), interleaved in one `segnode bench` run. The fastest
# allowed precision is what the node picks here (it times one tile per precision at first load).
# The Dice change is what the bundle records: its precision guards (segnode-distill export
# --guard) and the step's measurement (docs/benchmarks.md).
#   bash bench/precision.sh [REPEAT]          (build first: scripts/test.sh or cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-2}
bin=build/bin
series=../shared/data/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom
[[ -d $series ]] || { echo "bench/precision.sh: $series is absent"; exit 66; }
grep -m1 "model name" /proc/cpuinfo
grep -o -w -E "avx512_bf16|amx_bf16|avx512_vnni|avx_vnni|amx_int8" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
for model in $($bin/segnode models --json | python3 -c '
import json, sys
for line in sys.stdin:
    b = json.loads(line)
    if b.get("ok") and b.get("body_part") == "BRAIN" and "student" in b["name"] and not b.get("untrained"):
        print(b["name"] + "@" + b["version"])'); do
  echo "== $model"
  models=$($bin/segnode models --json | python3 -c '
import json, sys
name, version = sys.argv[1].split("@")
for line in sys.stdin:
    b = json.loads(line)
    if b.get("name") != name or b.get("version") != version:
        continue
    m = b["metrics"]
    print("  precision:", b["precision"], file=sys.stderr)
    print("  tile step:", m.get("tile_step", "the bundle default"), file=sys.stderr)
    allowed = ["fp32"]
    for p in ("bf16", "int8"):
        g = m.get("precision_guard", {}).get(p)
        if g is None:
            print(f"  {p} Dice guard: not recorded", file=sys.stderr)
        else:
            state = "passed" if g["passed"] else "FAILED"
            print(f"  {p} Dice guard: {state}: worst group drop", g["worst_group_drop"], "worst structure drop",
                  g["worst_structure_drop"], "(" + g["worst_structure"] + ")", file=sys.stderr)
        if g and g["passed"]:
            allowed.append(p)
    print(",".join([f"{sys.argv[1]}:onednn:fp32:step0.5"] + [f"{sys.argv[1]}:onednn:{p}" for p in allowed]))' "$model")
  $bin/segnode bench --models "$models" --input "$series" --repeat "$repeat" --warmup 2 --threads "$(nproc)"
done
