#!/usr/bin/env bash
# Ingest benchmark (issue: DICOM node part 1). The 170-file Philips MPRAGE sent by 4 parallel
# storescu associations to: segnoded (fsync on, SQLite WAL synchronous=FULL), DCMTK's storescp
# --fork (files only, no fsync) and Orthanc from Debian (default SQLite index), interleaved,
# fresh storage each run, TCP_NODELAY=1 for every DCMTK peer (DESIGN §7).
# Last line: vs_storescp=X vs_orthanc=Y instances_per_s=Z (segnoded throughput over each peer's).
# Usage: bench/ingest.sh [--repeat N]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=5
[[ ${1:-} == --repeat ]] && repeat=$2
series=../shared/data/dicom/philips_ingenia_elitionx_t1_mprage_sag
[[ -d $series ]] || { echo "ingest.sh: $series is absent" >&2; exit 66; }
scripts/install-deps.sh --tests >&2
dpkg-query -W orthanc >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends orthanc >&2
scripts/build.sh >&2
export TCP_NODELAY=1
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
mapfile -t files < <(find "$series" -name '*.dcm' | sort)
n=${#files[@]}
port() { echo $((30000 + RANDOM % 20000)); }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }

send4() {  # send4 PORT AET -> seconds for 4 parallel storescu over the series
  local p=$1 aec=$2 start end
  start=$(date +%s.%N)
  for k in 0 1 2 3; do
    storescu -aet STORESCU -aec "$aec" 127.0.0.1 "$p" $(for ((i = k; i < n; i += 4)); do echo "${files[i]}"; done) &
  done
  wait
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

run_segnoded() {
  local d=$work/segnoded.$1 p
  p=$(port); mkdir -p "$d"
  cat > "$d/cfg.yaml" <<CFG
dicom: {ae_title: SEGNODE, port: $p, max_associations: 8, peers: [{ae_title: STORESCU, host: 127.0.0.1}]}
storage: {spool_dir: $d/spool, database: $d/db.sqlite, min_free_mb: 100}
logging: {level: warn}
CFG
  build/bin/segnoded --config "$d/cfg.yaml" 2>"$d/log" & local pid=$!; pids+=($pid)
  wait_port "$p"; local s; s=$(send4 "$p" SEGNODE)
  kill "$pid"; wait "$pid" || true
  local got; got=$(/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from instances').fetchone()[0])" "$d/db.sqlite")
  [[ $got == "$n" ]] || { echo "segnoded stored $got of $n" >&2; exit 1; }
  echo "$s"
}

run_storescp() {
  local d=$work/storescp.$1 p; p=$(port); mkdir -p "$d"
  storescp --fork -od "$d" -aet STORESCP "$p" 2>/dev/null & local pid=$!; pids+=($pid)
  wait_port "$p"; local s; s=$(send4 "$p" STORESCP)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [[ $(ls "$d" | wc -l) == "$n" ]] || { echo "storescp stored $(ls "$d" | wc -l) of $n" >&2; exit 1; }
  echo "$s"
}

run_orthanc() {
  local d=$work/orthanc.$1 p h; p=$(port); h=$(port); mkdir -p "$d/storage"; chown -R orthanc "$d" 2>/dev/null || true
  cat > "$d/cfg.json" <<CFG
{"Name": "bench", "StorageDirectory": "$d/storage", "IndexDirectory": "$d/storage", "DicomAet": "ORTHANC",
 "DicomPort": $p, "HttpPort": $h, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
 "DicomCheckCalledAet": false, "Plugins": [], "ConcurrentJobs": 2}
CFG
  runuser -u orthanc -- env TCP_NODELAY=1 /usr/sbin/Orthanc "$d/cfg.json" 2>"$d/log" & local pid=$!; pids+=($pid)
  wait_port "$p"; local s; s=$(send4 "$p" ORTHANC)
  local got; got=$(curl -s "http://127.0.0.1:$h/statistics" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['CountInstances'])")
  pkill -P "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  [[ $got == "$n" ]] || { echo "orthanc stored $got of $n" >&2; exit 1; }
  echo "$s"
}

declare -a S C O
for r in $(seq "$repeat"); do
  S+=("$(run_segnoded "$r")"); C+=("$(run_storescp "$r")"); O+=("$(run_orthanc "$r")")
  echo "run $r: segnoded ${S[-1]} s, storescp ${C[-1]} s, orthanc ${O[-1]} s" >&2
done
/usr/bin/python3 - "$n" "${S[*]}" "${C[*]}" "${O[*]}" <<'PY'
import statistics as st, sys
n = int(sys.argv[1]); s, c, o = (st.median(map(float, a.split())) for a in sys.argv[2:5])
print(f"{n} instances, 4 associations, median of runs: segnoded {s:.3f} s, storescp {c:.3f} s, orthanc {o:.3f} s", file=sys.stderr)
print(f"vs_storescp={c/s:.2f} vs_orthanc={o/s:.2f} instances_per_s={n/s:.0f}")
PY
