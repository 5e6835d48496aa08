#!/usr/bin/env bash
# Pipeline benchmark (issue: DICOM node part 2). Orthanc (Debian) and segnoded on loopback;
# Orthanc sends the 170-file Philips MPRAGE to the node, which segments it with the installed
# 1/4-width brain student (SEGNODE_BENCH_RANDOM=1: a random-weight one) on this machine's cores
# and sends the DICOM-SEG back. Measures "series ready" -> "SEG accepted by Orthanc" from the node's
# own records, with the job's breakdown, and runs dciodvfy on the SEG that arrived.
# Last line: ready_to_seg_s=X dciodvfy_errors=N
# Usage: bench/pipeline.sh [--precision fp32|bf16] [--model NAME]
#   --precision: pins processing.precision (default auto: the node measures, as it does in
#   production); --model: an installed brain bundle (default brain-mr-student-w4).
set -euo pipefail
cd "$(dirname "$0")/.."
precision=auto model=brain-mr-student-w4
while (( $# )); do
  case $1 in
    --precision) precision=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "pipeline.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
series=../shared/data/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom
[[ -d $series ]] || { echo "pipeline.sh: $series is absent" >&2; exit 66; }
scripts/install-deps.sh --tests >&2
for p in orthanc dicom3tools curl; do dpkg-query -W $p >/dev/null 2>&1 || apt-get install -y -q --no-install-recommends $p >&2; done
scripts/build.sh >&2
export TCP_NODELAY=1
work=$(mktemp -d); chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { echo $((30000 + RANDOM % 20000)); }
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
node_port=$(port); pacs_port=$(port); http_port=$(port)

# The installed (trained) 1/4 student when there is one, else a random-weight one of the
# template's plan. Trained weights matter: they decide how many segments the SEG carries.
if [ -d "etc/models/$model" ] && [ "${SEGNODE_BENCH_RANDOM:-0}" != 1 ]; then
  mkdir -p "$work/models" && cp -r "etc/models/$model" "$work/models/"
else
  build/bin/segnode models init --template etc/templates/brain-mr-synthseg.yaml --name "$model" \
    --version 0.0.1 --width-divisor 4 --models-dir "$work/models" >&2
fi
cat > "$work/segnode.yaml" <<CFG
dicom: {ae_title: SEGNODE, port: $node_port, peers: [{ae_title: ORTHANC, host: 127.0.0.1}]}
storage: {spool_dir: $work/spool, database: $work/db.sqlite, min_free_mb: 100}
series: {quiet_period_s: 2}
processing: {models_dir: $work/models, output_dir: $work/out, precision: $precision}
http: {port: 0}
destinations: [{name: pacs, ae_title: ORTHANC, host: 127.0.0.1, port: $pacs_port}]
routes: [{name: brain-t1, match: {modality: MR, min_slices: 64}, model: $model, destinations: [pacs]}]
CFG
mkdir -p "$work/orthanc"; chown -R orthanc "$work/orthanc"
cat > "$work/orthanc.json" <<CFG
{"Name": "bench", "StorageDirectory": "$work/orthanc", "IndexDirectory": "$work/orthanc", "DicomAet": "ORTHANC",
 "DicomPort": $pacs_port, "HttpPort": $http_port, "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
 "DicomCheckCalledAet": false, "Plugins": [], "DicomModalities": {"segnode": ["SEGNODE", "127.0.0.1", $node_port]}}
CFG
setpriv --reuid=orthanc --regid=orthanc --init-groups /usr/sbin/Orthanc "$work/orthanc.json" 2>"$work/orthanc.log" & pids+=($!)
build/bin/segnoded --config "$work/segnode.yaml" 2>"$work/segnoded.log" & pids+=($!)
wait_port "$pacs_port"; wait_port "$node_port"; wait_port "$http_port"
storescu -aet BENCH -aec ORTHANC 127.0.0.1 "$pacs_port" "$series"/*.dcm
sid=$(curl -sf "http://127.0.0.1:$http_port/series" | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[0])")
curl -sf -X POST --data-binary "$sid" "http://127.0.0.1:$http_port/modalities/segnode/store" >/dev/null
find_seg() { curl -sf -X POST --data-binary '{"Level":"Instance","Query":{"Modality":"SEG"}}' "http://127.0.0.1:$http_port/tools/find"; }
for _ in $(seq 600); do [[ $(find_seg | tr -d ' \n') != "[]" ]] && break; sleep 0.5; done
seg=$(find_seg | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)[0])")
curl -sf -o "$work/seg.dcm" "http://127.0.0.1:$http_port/instances/$seg/file"
errors=$(dciodvfy "$work/seg.dcm" 2>&1 | grep -c "^Error" || true)
# The precision the node chose, and why (measured on this CPU, or pinned), to stderr.
grep -o 'precision [a-z0-9]* ([^)]*)' "$work/segnoded.log" | sed 's/^/node: /' >&2 || true
/usr/bin/python3 - "$work/db.sqlite" "$errors" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
ready, = db.execute("select ready_ms from series").fetchone()
started, finished, timings = db.execute("select started_ms, finished_ms, timings from jobs").fetchone()
sent, = db.execute("select sent_ms from outbox where state = 'sent'").fetchone()
t = json.loads(timings)
total = (sent - ready) / 1000
parts = {"queue": (started - ready) / 1000, **{k[:-2]: v for k, v in t.items()}, "send": (sent - finished) / 1000}
print("breakdown (s): " + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()), file=sys.stderr)
print(f"ready_to_seg_s={total:.1f} dciodvfy_errors={sys.argv[2]}")
PY
