#!/usr/bin/env bash
# Precision by measurement (issue 14), on this machine: for each installed brain student, what
# it allows (fp32 always; bf16 only with a passed Dice guard in its bundle), what the node picks
# here (the same per-tile measurement the workers make at first load), and whole-volume seconds
# of fp32 and bf16 side by side, interleaved in one run (segnode bench), on the Philips T1. The
# Dice change is the bundle's recorded guard (segnode-distill export --guard), when it has one.
#   bash bench/precision.sh [REPEAT]          (build first: scripts/test.sh or cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-2}
bin=build/bin
series=../shared/data/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom
[[ -d $series ]] || { echo "bench/precision.sh: $series is absent"; exit 66; }
grep -m1 "model name" /proc/cpuinfo
grep -o -w -E "avx512_bf16|amx_bf16|avx512_vnni|amx_int8" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
for model in $($bin/segnode models --json | python3 -c '
import json, sys
for line in sys.stdin:
    b = json.loads(line)
    if b.get("ok") and b.get("body_part") == "BRAIN" and "student" in b["name"] and not b.get("untrained"):
        print(b["name"] + "@" + b["version"])'); do
  echo "== $model"
  $bin/segnode models --json | python3 -c '
import json, sys
name, version = sys.argv[1].split("@")
for line in sys.stdin:
    b = json.loads(line)
    if b.get("name") == name and b.get("version") == version:
        print("  precision:", b["precision"])
        g = b["metrics"].get("precision_guard", {}).get("bf16")
        print("  bf16 Dice guard:", "not recorded (bf16 not allowed)" if g is None else
              f"{'passed' if g['passed'] else 'FAILED'}: worst group drop {g['worst_group_drop']}, worst structure drop {g['worst_structure_drop']} ({g['worst_structure']})")' "$model"
  $bin/segnode bench --models "$model:onednn:fp32,$model:onednn:bf16" --input "$series" --repeat "$repeat" --warmup 2 --threads "$(nproc)"
done
