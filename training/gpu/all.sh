#!/usr/bin/env bash
# One device lease, three phases, no idle gaps: `start` launches the whole run in its own process
# session (it survives the command that started it while the machine stays held) and waits for
# the first phase; each `collect PHASE` call waits for that phase and returns its bundles in $OUT.
#   bash training/gpu/all.sh start            -> teacher-brain bundles
#   bash training/gpu/all.sh collect students-brain
#   bash training/gpu/all.sh collect ct
# Budgets (seconds of training per phase) come from SEGNODE_GPU_BUDGETS="teacher students ct".
set -uo pipefail
cd "$(dirname "$0")/../.."
mkdir -p gpu-runs
read -r tb sb cb <<<"${SEGNODE_GPU_BUDGETS:-480 500 500}"
case $1 in
run)  # the background pipeline itself
  for p in "teacher-brain $tb" "students-brain $sb" "ct $cb"; do
    set -- $p
    OUT=$PWD/gpu-runs/out-$1 bash training/gpu/run.sh "$1" "$2" >"gpu-runs/log-$1" 2>&1 \
      && touch "gpu-runs/done-$1" || { touch "gpu-runs/failed-$1"; break; }
  done
  ;;
start)
  [ -e gpu-runs/started ] || { touch gpu-runs/started; setsid nohup bash "$0" run >gpu-runs/all.log 2>&1 < /dev/null & }
  exec bash "$0" collect teacher-brain
  ;;
collect)
  phase=$2
  for _ in $(seq 1 590); do
    [ -e "gpu-runs/done-$phase" ] || [ -e "gpu-runs/failed-$phase" ] && break
    sleep 1
  done
  grep -v -e Warning -e "^it .*[1-9]250/" "gpu-runs/log-$phase" | tail -60
  [ -e "gpu-runs/done-$phase" ] && cp gpu-runs/out-"$phase"/* "$OUT"/ && ls -la "$OUT"
  ;;
esac
