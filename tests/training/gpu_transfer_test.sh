#!/usr/bin/env bash
# What a GPU run sends back, and a bundle too large for one call sent to it, survive the trip:
# training/gpu/students.sh `collect` + `parts` on a fake runs tree (small pieces, so that every
# large file spans several pieces and calls), then training/gpu/join-parts.sh here, byte for byte;
# a finished run's state and a RESUMED=no run's state stay behind, an unfinished run's comes back;
# a missing piece is named with exit 65; bundle weights staged as pieces are joined by `receive`
# only once all of them are there; a second `start` on the machine packs only its own runs.
#   bash tests/training/gpu_transfer_test.sh SOURCE_DIR
set -euo pipefail
src=$1
source "$src/tests/cli/e2e_common.sh"  # fail
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
mkdir -p "$t/repo/training/gpu"
cp "$src/training/gpu/students.sh" "$src/training/gpu/join-parts.sh" "$t/repo/training/gpu/"
cd "$t/repo"
export PIECE=40K PIECES_PER_CALL=6 CALL_BYTES=$((100 * 1024))

# Three runs: one finished, one stopped by its deadline, one that nothing resumes.
run() {  # NAME STEP [no-resume]
  local r=gpu-runs/runs/$1
  mkdir -p "$r/work" "$r/net-$1/0.0.1"
  printf 'step: %s\nplanned_iterations: 100\n' "$2" >"$r/work/state.yaml"
  echo "iteration,mean_dice" >"$r/work/validation.csv"
  echo "it $2/100" >"$r/log"
  echo 999999999 >"$r/pid"  # no such process: the run has ended
  head -c 150000 /dev/urandom >"$r/net-$1/0.0.1/weights.safetensors"
  echo "name: net-$1" >"$r/net-$1/0.0.1/bundle.yaml"
  head -c 70000 /dev/urandom >"$r/work/net-$1.state.safetensors"
  [ "${3:-}" = no-resume ] && touch "$r/no-resume"
  return 0
}
run done 100
run stopped 60
run arm 40 no-resume

# The calls: `collect`, then `parts N` for as long as the last call names one.
mkdir -p calls/1
OUT=$PWD/calls/1 bash training/gpu/students.sh collect 0 >calls/1.log 2>&1 || fail "collect: $(tail calls/1.log)"
[ -f calls/1/00-small.tar ] || fail "the first call does not bring the small files first"
n=1
while next=$(sed -n 's/.*`students.sh parts \([0-9]*\)`.*/\1/p' "calls/$n.log") && [ -n "$next" ]; do
  (( n < 10 )) || fail "more than 10 calls"
  n=$((n + 1)) && mkdir -p "calls/$n"
  OUT=$PWD/calls/$n bash training/gpu/students.sh parts "$next" >"calls/$n.log" 2>&1
  [ "$(du -cb "calls/$n" | tail -1 | cut -f1)" -le $CALL_BYTES ] || fail "call $n brings more than CALL_BYTES"
done
(( n >= 3 )) || fail "expected the pieces to need several calls, got $n"

# Joined here, from the calls' folders in any order.
folders=$(ls -d calls/*/ | sort -r)
# shellcheck disable=SC2086
bash training/gpu/join-parts.sh joined $folders >join.log 2>&1 || fail "join: $(cat join.log)"
for r in done stopped arm; do
  cmp -s "joined/$r/net-$r/0.0.1/weights.safetensors" "gpu-runs/runs/$r/net-$r/0.0.1/weights.safetensors" ||
    fail "$r: bundle weights differ after the trip"
  [ -f "joined/$r/work/validation.csv" ] || fail "$r: curves missing"
done
cmp -s joined/stopped/work/net-stopped.state.safetensors gpu-runs/runs/stopped/work/net-stopped.state.safetensors ||
  fail "the stopped run's state did not come back whole"
[ ! -e joined/done/work/net-done.state.safetensors ] || fail "a finished run's state came back"
[ ! -e joined/arm/work/net-arm.state.safetensors ] || fail "a RESUMED=no run's state came back"

# A later `start` on the same machine (a student after its teacher): its packs hold its runs only.
echo arm >gpu-runs/started
mkdir -p calls/later
OUT=$PWD/calls/later bash training/gpu/students.sh collect 0 >later.log 2>&1 || fail "collect after a second start"
[ "$(tar tf calls/later/00-small.tar | grep -c -e '^done/' -e '^stopped/')" -eq 0 ] || fail "a later start's pack holds the earlier runs"
ls calls/later | grep -q '^01-arm__net-arm__' || fail "a later start's pack lacks its own run's bundle"
rm gpu-runs/started

# A call lost: join names what is missing and exits 65.
set +e
bash training/gpu/join-parts.sh partial calls/1 >partial.log 2>&1
rc=$?
set -e
[ $rc -eq 65 ] || fail "a missing piece: exit $rc, expected 65"
grep -q "not (all) back" partial.log || fail "a missing piece is not named: $(cat partial.log)"

# Into the machine: weights in pieces over two `receive` calls, joined only when all are there.
b=.gpu-carry/bundles/big/1.0.0
mkdir -p "$b" && head -c 90000 /dev/urandom >whole && cp whole "$b/weights.safetensors"
(cd "$b" && sha256sum weights.safetensors >weights.safetensors.sha256 && split -b 40K -d -a 2 weights.safetensors weights.safetensors.p && rm weights.safetensors)
mkdir -p .gpu-carry/state held && mv "$b/weights.safetensors.p02" held/
OUT=$PWD/calls/r bash training/gpu/students.sh receive >r1.log 2>&1 || true
[ ! -e gpu-runs/bundles/big/1.0.0/weights.safetensors ] || fail "weights joined with a piece missing"
grep -q "not all" r1.log || fail "receive does not say that pieces are missing: $(cat r1.log)"
mv held/weights.safetensors.p02 "$b/" && rm "$b"/weights.safetensors.p0[01]
OUT=$PWD/calls/r bash training/gpu/students.sh receive >r2.log 2>&1 || true
cmp -s whole gpu-runs/bundles/big/1.0.0/weights.safetensors || fail "receive did not join the pieces: $(cat r2.log)"
echo "ok: $n calls brought back 3 bundles and 1 state; join checked; receive joined 3 pieces over 2 calls"
