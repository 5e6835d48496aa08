#!/usr/bin/env bash
# Trains on the GPU machine (brain students; CT teachers, MODE=train) as runs that outlive the
# device calls: the machine stays held between calls (30 s), so one call starts the runs in the
# background and later calls watch them and bring back their state.
#   bash training/gpu/students.sh start DEADLINE_S RUN...  unpack, build, probe, start, watch until 580 s
#   bash training/gpu/students.sh watch SECONDS             show progress; pack the latest checkpoint
#   bash training/gpu/students.sh collect [SECONDS]          wait for the runs to end, at most SECONDS
#                                                            (570: give less when the device budget
#                                                            left is shorter); pack their state
#   bash training/gpu/students.sh parts FIRST               the last pack's pieces from FIRST on (64 MiB a call)
#   bash training/gpu/students.sh build                      only build (a check of the CUDA build)
#   bash training/gpu/students.sh receive                    keep .gpu-carry/state (and bundles/) on
#                                                            the machine for the next call (a state or
#                                                            a second teacher too big to travel with
#                                                            the teacher and the maps: w2's 50 MB)
# DEADLINE_S: seconds after `start` began at which every run stops (wall clock, never the learning
# rate: each run's schedule is fixed by its planned total, training/Trainer.h).
# RUN: a file in training/gpu/runs/ (NAME.env) that defines the distill options of one run; runs go
# round-robin over the GPUs nvidia-smi lists (several share a GPU when there are fewer GPUs).
# Carried in: .gpu-carry/ (training/gpu/stage-students.sh), with state/<run>/ where a run continues,
# and ref-src.tar.gz where `start` first probes its first run with an earlier commit's code.
# Brought back in $OUT: NN-* pieces (curves, EMA bundles and, of a run not finished, its training
# state; join them here with training/gpu/join-parts.sh, which checks their sha256), and
# progress.txt (each run's last lines; its own name, so that a call may send its output to
# $OUT/log.txt without two writers).
# PIECES_PER_CALL=1 sends only 00-small.tar (curves, logs): for a `start` that a `collect` follows
# on the same machine. A call that sends 48-64 MB back has twice left the machine gone before the
# next call (sessions 23, 24), where calls that send little back kept it (docs/models.md, session 24).
set -uo pipefail
cd "$(dirname "$0")/../.."
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
G=gpu-runs
OUT=${OUT:-$PWD/$G/out}
mkdir -p "$G" "$OUT"
C=.gpu-carry
BRAIN_TEACHER=etc/models/brain-mr-teacher/0.3.0  # the family's teacher; a run's TEACHER replaces it
# What a run's .env may set beyond OPTIONS and the schedule, cleared before each one is sourced.
RUN_VARS="PROBE_BATCHES MODE DATA TABLE BATCH TEACHER SYNTH_THREADS RESUMED"
# A call brings back 8 files and 64 MiB at most: pieces of 16 MiB (a 66 MB CT bundle is four), six
# files a call, and 64 KiB left for progress.txt and the call's log.txt (smaller in the test,
# tests/training/gpu_transfer_test.sh).
PIECE=${PIECE:-16M} PIECES_PER_CALL=${PIECES_PER_CALL:-6} CALL_BYTES=${CALL_BYTES:-$(( 64 * 1024 * 1024 - 65536 ))}

# The libcrypto that Python's hashlib loads: the box has it without its headers (carried in prefix/).
libcrypto() { ldd "$(python3 -c 'import _hashlib; print(_hashlib.__file__)')" | awk '/libcrypto/ {print $3}'; }

build() {  # [SOURCE BUILD_DIR]; incremental: a warm machine keeps build-gpu/
  local src=${1:-.} dir=${2:-build-gpu} prefix ssl=()
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  [ -f /usr/include/openssl/evp.h ] || ssl=(-DOPENSSL_INCLUDE_DIR="$PWD/$C/prefix/include" -DOPENSSL_CRYPTO_LIBRARY="$(libcrypto)")
  [ -f "$dir/build.ninja" ] || cmake -S "$src" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSEGNODE_BUILD_DAEMON=OFF -DSEGNODE_BUILD_TESTS=OFF \
    -DCMAKE_PREFIX_PATH="$prefix;$PWD/$C/prefix" -DCMAKE_CUDA_ARCHITECTURES=90 "${ssl[@]}" >$G/cmake.log 2>&1 || { tail -40 $G/cmake.log; return 1; }
  ninja -C "$dir" segnode-distill >$G/ninja.log 2>&1 || { grep -A3 error $G/ninja.log | head -80; return 1; }
}

# The batch probe of the run whose .env is sourced (TEACHER, OPTIONS; train and table from
# data_of) with the program BIN: probe_best_batch in $G/NAME.out, the "probe:" lines in $G/NAME.log.
#   probe BIN NAME BATCHES [ARG...]
probe() {
  local bin=$1 name=$2 batches=$3
  shift 3
  "$bin" distill --teacher "${TEACHER:-$BRAIN_TEACHER}" --labels "$train" --table "$table" --probe-batches "$batches" \
    --out "$G/$name" --resume "$@" "${OPTIONS[@]}" >"$G/$name.out" 2>"$G/$name.log"
}

# The probe of RUN built from an earlier commit's source (stage-students.sh REF=COMMIT), on this
# machine, before this tree's probe: whether the code or the machine made a run slower than in
# an earlier session (brain-kd-ta: 4.2 it/s in session 9, 2.0-2.4 since). Its first line and the
# tree's first line time the same batch the same way; the reference runs one synthesis thread.
probe_reference() {  # once a machine: a later `start` on the warm machine skips it
  [ -e $G/ref-probed ] && return 0
  touch $G/ref-probed
  local run=$1 ref t0; ref=$(cat $C/ref-commit) t0=$(date +%s)
  rm -rf $G/ref-src && mkdir -p $G/ref-src && tar xzf $C/ref-src.tar.gz -C $G/ref-src
  build $G/ref-src build-ref || { echo "reference $ref: no build"; return 0; }
  (
    # shellcheck disable=SC2086
    unset $RUN_VARS
    # shellcheck source=/dev/null
    source "training/gpu/runs/$run.env"
    data_of
    probe build-ref/bin/segnode-distill probe-ref-$run "${BATCH:-8}"
    grep -e probe: $G/probe-ref-$run.log | sed "s/^/reference $ref: /" || grep -v Warning $G/probe-ref-$run.log | tail -5
  )
  echo "reference $ref: build + probe $(( $(date +%s) - t0 )) s"
}

unpack() {  # label maps travel as tars: brain as int16 xz (a third of the gzip size), FLARE22 as is
  if [ -f $C/brain-maps.tar.xz ] && [ ! -d $G/brain ]; then mkdir -p $G/brain && tar xJf $C/brain-maps.tar.xz -C $G/brain; fi
  if [ -f $C/flare-maps.tar ] && [ ! -d $G/flare ]; then mkdir -p $G/flare && tar xf $C/flare-maps.tar -C $G/flare; fi
  keep_bundles  # staged with BUNDLES= and small enough to travel with the rest (else `receive`)
  return 0
}

# Bundles staged by stage-students.sh BUNDLES= to $G/bundles/NAME/VERSION, where a run's .env looks.
# Weights that came as pieces over several calls are joined once all are here (their sha256).
keep_bundles() {
  [ -d $C/bundles ] || return 0
  mkdir -p $G/bundles && cp -r $C/bundles/. $G/bundles/
  local s d
  for s in $G/bundles/*/*/weights.safetensors.sha256; do
    d=$(dirname "$s")
    [ -f "$s" ] && [ ! -f "$d/weights.safetensors" ] || continue
    cat "$d"/weights.safetensors.p[0-9][0-9] >"$d/weights.safetensors" 2>/dev/null
    if (cd "$d" && sha256sum --quiet -c weights.safetensors.sha256 >/dev/null 2>&1); then
      rm -f "$d"/weights.safetensors.p[0-9][0-9] && echo "$d: weights joined from their pieces"
    else
      rm -f "$d/weights.safetensors"
      echo "$d: $(ls "$d"/weights.safetensors.p[0-9][0-9] 2>/dev/null | wc -l) pieces of its weights here, not all: carry the rest"
    fi
  done
}

# Nothing when the run in directory $1 still runs; else how it ended (its log's last line).
ended() { kill -0 "$(cat "$1/pid")" 2>/dev/null || echo "(ended: $(grep -v Warning "$1/log" | tail -1))"; }

# The data of a run (DATA in its .env): training maps, held-out validation maps, generation table.
# brain: SynthSeg's maps, 18 and 19 held out; flare: FLARE22's, training/ct/flare22-split.txt held out.
data_of() {
  case ${DATA:-brain} in
  brain)
    train=$(ls $G/brain/training_seg_*.nii | grep -v -e _18 -e _19 | paste -sd,)
    val=$(ls $G/brain/training_seg_1[89].nii | paste -sd,)
    table=$G/brain/synthseg_generation_label_table.tsv ;;
  flare)
    local held; held=$(grep -v '^#' training/ct/flare22-split.txt | paste -sd'|')
    train=$(ls $G/flare/*.nii.gz | grep -v -E "$held" | paste -sd,)
    val=$(ls $G/flare/*.nii.gz | grep -E "$held" | paste -sd,)
    table=${TABLE:-training/ct/abdomen-ct-generation.tsv} ;;  # TABLE: a run's own (teacher 0.3's)
  esac
}

# One run, in the background: the options come from training/gpu/runs/$1.env. MODE=distill (the
# default) distils students from TEACHER (default: the brain teacher); MODE=train trains a
# teacher (its OPTIONS name the template, plan and bundle).
launch() {
  local run=$1 gpu=$2 budget=$3
  local work=$G/runs/$run
  mkdir -p "$work"
  local from=$C/state/$run
  [ -d "$from" ] || from=$G/received/$run  # state carried by an earlier `receive` call
  [ -d "$from" ] && [ ! -e "$work/work/state.yaml" ] && mkdir -p "$work/work" && cp -r "$from/." "$work/work/"
  # shellcheck source=/dev/null
  source "training/gpu/runs/$run.env"   # sets OPTIONS (an array), TOTAL_SAMPLES, ...; MODE, DATA
  local train val table mode=${MODE:-distill} teacher=()
  data_of
  [ "$mode" = distill ] && teacher=(--teacher "${TEACHER:-$BRAIN_TEACHER}")
  local batch=${BATCH:-2}
  CUDA_VISIBLE_DEVICES=$gpu setsid nohup build-gpu/bin/segnode-distill "$mode" "${teacher[@]}" \
    --labels "$train" --val-labels "$val" --table "$table" \
    --batch "$batch" --iterations $(( TOTAL_SAMPLES / batch )) --lr-warmup $(( WARMUP_SAMPLES / batch )) \
    --validate-every $(( VALIDATE_SAMPLES / batch )) --checkpoint-every $(( VALIDATE_SAMPLES / batch )) \
    --log-every 100 --time-budget "$budget" --resume --out "$work" "${SYNTH_ARGS[@]}" "${OPTIONS[@]}" \
    >"$work/log" 2>&1 </dev/null &
  echo $! >"$work/pid"
  # A run that nothing resumes (RESUMED=no: an ablation arm, compared where its deadline stopped it)
  # brings back its curves and EMA bundle, never its state (a CT network's is 200 MB).
  if [ "${RESUMED:-yes}" = no ]; then touch "$work/no-resume"; else rm -f "$work/no-resume"; fi
}

# The training state of the run in directory $1 stays on the machine: its schedule is done (its
# state.yaml's step is its planned total), or nothing will resume it (launch: RESUMED=no).
state_stays() {
  local f=$1/work/state.yaml
  [ -e "$1/no-resume" ] && return 0
  [ -f "$f" ] && [ "$(sed -n 's/^step: //p' "$f")" = "$(sed -n 's/^planned_iterations: //p' "$f")" ]
}

# What comes back of every run, in pieces a call can return ($G/pack/, in the order they matter):
# 00-small.tar first (logs, curves, validation, bundle.yaml files, SHA256SUMS of the large
# files), then each bundle's weights, then the training state of a run that will resume, each
# large file split into pieces of PIECE named after its path ('/' as '__'). A finished run's
# training state stays behind (nothing resumes it, and a CT teacher's is 200 MB: weights, momentum
# and EMA of 16.5 M parameters); a run stopped by its deadline or a fault keeps it, unless RESUMED=no.
# Here: bash training/gpu/join-parts.sh DIR FILES_AT... rebuilds the runs' tree and checks it.
pack() {
  rm -rf $G/pack && mkdir -p $G/pack
  local r f i=1 bundles=() states=() large runs
  runs=$(packed_runs)
  # shellcheck disable=SC2086
  for f in $(cd $G/runs && find $runs -name '*.safetensors' ! -path '*/probe-batch-*' | sort); do
    case $f in
    */work/*) state_stays "$G/runs/${f%%/*}" || states+=("$f") ;;
    *) bundles+=("$f") ;;
    esac
  done
  large=("${bundles[@]}" "${states[@]}")
  (cd $G/runs && { [ ${#large[@]} -eq 0 ] || sha256sum "${large[@]}"; } >SHA256SUMS)
  # shellcheck disable=SC2086
  tar cf $G/pack/00-small.tar -C $G/runs --exclude='*.safetensors' --exclude='probe-batch-*' --exclude=pid SHA256SUMS $runs
  for f in "${large[@]}"; do
    split -b $PIECE -d -a 2 "$G/runs/$f" "$G/pack/$(printf %02d $i)-${f//\//__}.p"
    i=$(( i + 1 ))
  done
  for r in $runs; do
    echo "== $r"; grep -v Warning "$G/runs/$r/log" | grep -e validation -e "^it .*[05]00/" -e probe -e error -e segnode-distill | tail -25
    ended "$G/runs/$r"
  done >"$OUT/progress.txt"
  tail -60 "$OUT/progress.txt"
  parts 0
  ls -la "$OUT"
}

# The runs a pack holds: those the machine's last `start` launched (a later `start` on the same
# machine, such as a student run after its teacher's, does not send the earlier runs again).
packed_runs() {
  if [ -f $G/started ]; then cat $G/started; else (cd $G/runs && ls); fi
}

# The pieces of the last pack from index FIRST on that one call brings back (CALL_BYTES, at most
# PIECES_PER_CALL files: $OUT also holds progress.txt and a call's log.txt), and the line that
# names the call for the rest.
parts() {
  local first=$1 all=("$G"/pack/*) bytes=0 n=0 size
  rm -f "$OUT"/[0-9][0-9]-*
  while (( first + n < ${#all[@]} && n < PIECES_PER_CALL )); do
    size=$(stat -c %s "${all[first + n]}")
    (( bytes + size > CALL_BYTES )) && break
    cp "${all[first + n]}" "$OUT/"
    bytes=$(( bytes + size )) n=$(( n + 1 ))
  done
  (( first + n < ${#all[@]} )) && echo "pieces $first-$(( first + n - 1 )) of ${#all[@]} here: bring the rest with \`students.sh parts $(( first + n ))\`"
  return 0
}

running() { for p in $G/runs/*/pid; do kill -0 "$(cat "$p")" 2>/dev/null && return 0; done; return 1; }

# Waits while a run is running, at most until $2 seconds after the time $1; a run still running
# then is said, and the pack that follows holds its last checkpoint.
await_runs() {
  while running && (( $(date +%s) < $1 + $2 )); do sleep 5; done
  if running; then echo "still running after $2 s: packing each run's last checkpoint"; fi
}

# `watch`, `collect` and `parts` need the machine that ran `start`. A call that finds none came
# more than 30 s after the last (the machine went back, and this one is bare): say so, exit 69
# (EX_UNAVAILABLE). The last pack that came back holds the state to stage and start again from.
require_runs() {
  compgen -G "$G/runs/*/pid" >/dev/null && return 0
  echo "no runs on this machine: it is a fresh one (the machine that ran \`start\` went back 30 s after its last call)." \
    "Stage the state of the last pack that came back (training/state/RUN/) and \`start\` again." >&2
  exit 69
}

case $1 in
receive)  # state to $G/received/RUN, bundles (stage-students.sh BUNDLES) to $G/bundles/NAME/VERSION
  mkdir -p $G/received
  if [ -d $C/state ]; then cp -r $C/state/. $G/received/; fi  # a call may carry only bundle pieces
  keep_bundles
  du -sh $G/received/* $G/bundles/* 2>/dev/null
  ;;
build)  # a build check: compile segnode-distill against PyTorch's LibTorch, print its usage
  t0=$(date +%s); build || exit 1; echo "build: $(( $(date +%s) - t0 )) s"; build-gpu/bin/segnode-distill --help | head -3
  ;;
start)
  t0=$(date +%s); deadline=$2; shift 2
  echo "$(( t0 + deadline ))" >$G/deadline
  unpack || exit 1
  build || exit 1
  echo "unpack + build: $(( $(date +%s) - t0 )) s"; nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv,noheader
  # The host too: a step of many small kernels and host waits runs at the speed of the CPU that
  # launches them, and each session gets a fresh machine.
  echo "host: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
  [ -f $C/ref-src.tar.gz ] && probe_reference "$1"
  ngpu=$(nvidia-smi -L | wc -l)
  printf '%s\n' "$@" >$G/started
  i=0
  for run in "$@"; do
    # shellcheck disable=SC2086
    unset $RUN_VARS
    source "training/gpu/runs/$run.env"
    # A new run takes the batch with the most samples per second, measured here; a run with a
    # batch probes only if its .env asks (PROBE_BATCHES), to see where the time of a step goes,
    # or to choose its synthesis threads (SYNTH_THREADS: used only where the probe measures the
    # whole step faster with them than with one thread; the batches are the same either way, so
    # the choice may change between the calls of a run). A MODE=train run takes SYNTH_THREADS as
    # given (the probe distils): measure it beside a distillation run first.
    SYNTH_ARGS=()
    [ "${MODE:-distill}" = train ] && [ -n "${SYNTH_THREADS:-}" ] && SYNTH_ARGS=(--synth-threads "$SYNTH_THREADS")
    if [ "${MODE:-distill}" = distill ] && { [ -z "${BATCH:-}" ] || [ -n "${PROBE_BATCHES:-}" ] || [ -n "${SYNTH_THREADS:-}" ]; }; then
      data_of
      CUDA_VISIBLE_DEVICES=$(( i % ngpu )) probe build-gpu/bin/segnode-distill probe-$run \
        "${PROBE_BATCHES:-${BATCH:-2,4,8}}" --synth-threads "${SYNTH_THREADS:-1}"
      grep -e probe: $G/probe-$run.log || { grep -v Warning $G/probe-$run.log | tail; exit 1; }
      [ -n "${BATCH:-}" ] || BATCH=$(sed -n 's/probe_best_batch=//p' $G/probe-$run.out)
      if [ -n "${SYNTH_THREADS:-}" ]; then
        read -r many one < <(sed -n "s/^probe: batch $BATCH: step \([0-9]*\) ms on [0-9]* synthesis threads, \([0-9]*\) ms on one$/\1 \2/p" $G/probe-$run.log)
        [ -n "${many:-}" ] && (( many < one )) && SYNTH_ARGS=(--synth-threads "$SYNTH_THREADS")
        echo "$run: a step of batch $BATCH ${many:-?} ms with $SYNTH_THREADS synthesis threads, ${one:-?} ms with one: runs with ${SYNTH_ARGS[*]:-one thread}"
      fi
    fi
    launch "$run" $(( i % ngpu )) $(( t0 + deadline - $(date +%s) - 40 ))
    i=$(( i + 1 ))
  done
  # A run that cannot start (a missing teacher, a bad option) says so now, not at the deadline.
  sleep 30
  for run in "$@"; do ended $G/runs/$run | sed "s/^/$run at start: /"; done
  # Each run's budget ends 40 s before the deadline, set-up included (segnode-distill counts from
  # its start): time to validate, save and export. The pack waits for that, never past the deadline.
  await_runs "$t0" "$deadline"
  pack
  ;;
parts)  # the pieces of the last pack from index $2 on (`pack` named the first that did not fit)
  require_runs
  parts "$2"
  ls -la "$OUT"
  ;;
watch|collect)  # watch SECONDS is collect with its limit given
  require_runs
  await_runs "$(date +%s)" "${2:-570}"
  pack
  ;;
esac
