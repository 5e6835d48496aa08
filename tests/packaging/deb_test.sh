#!/usr/bin/env bash
# The Debian package, installed for real (issue 13): builds it (CPack), lintian (0 errors), checks
# its Depends (dpkg-shlibdeps) and conffile, installs it with dpkg -i, verifies the unit
# (systemd-analyze verify; security --offline: the exposure score is printed), runs segnoded as
# the segnode user the way the unit does (no systemd here: setpriv, no capabilities, no new
# privileges), C-ECHOes it, sends it a series and waits for the job, stops it with SIGTERM, then
# dpkg -r (config and state stay) and dpkg --purge (they go). Every wait is bounded.
#   deb_test.sh BUILD_DIR SHARED_DATA          (root; "SKIPPED:" when it cannot run here)
set -euo pipefail
build=$1 data=$2
series=$data/dicom/philips_ingenia_elitionx_t1_mprage_sag/dicom
skip() { echo "SKIPPED: $*"; exit 0; }
[[ $(id -u) == 0 ]] || skip "needs root (dpkg -i)"
for tool in dpkg lintian setpriv systemd-analyze echoscu storescu curl; do
  command -v $tool >/dev/null || skip "$tool is not installed"
done
if dpkg-query -W -f='${Status}' segnode 2>/dev/null | grep -q "install ok installed"; then
  skip "a segnode package is installed on this machine: not touching it"
fi
node=
cleanup() {
  [[ -n $node ]] && kill -9 "$node" 2>/dev/null || true
  dpkg --purge segnode >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [[ -f /tmp/segnode-deb-test.log ]] && tail -20 /tmp/segnode-deb-test.log; exit 1; }
wait_for() {  # SECONDS COMMAND...: polls every 0.5 s
  local t=$1; shift
  for ((i = 0; i < t * 2; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

cmake --build "$build" --target package >/dev/null
deb=$(ls "$build"/segnode_*_*.deb)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
lint=$(lintian "$deb" 2>&1 | grep -v "running with root privileges" || true)
echo "${lint:-lintian: no tags}"
grep -q "^E:" <<<"$lint" && fail "lintian reports errors"
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libdcmtk17 libtorch1.13 libdnnl libsqlite3-0 libsystemd0 libyaml-cpp; do
  grep -q "$lib" <<<"$depends" || fail "Depends lacks $lib (dpkg-shlibdeps)"
done

dpkg -i "$deb" >/dev/null
dpkg-query -W -f='${Conffiles}\n' segnode | grep -q "/etc/segnode/segnode.yaml" || fail "the config is not a conffile"
getent passwd segnode >/dev/null || fail "no segnode user after install"
[[ $(stat -c %U /var/lib/segnode) == segnode ]] || fail "/var/lib/segnode is not the segnode user's"
# A site's own bundle beside the package's (processing.site_models_dir of the packaged config).
src=$(cd "$(dirname "$0")/../.." && pwd)
segnode models init --template "$src/etc/templates/brain-mr-synthseg.yaml" --name site-brain --version 0.0.1 \
  --width-divisor 8 --models-dir /var/lib/segnode/models >/dev/null
# Read whole, then searched: `segnode models | grep -q` fails under pipefail once the list is longer
# than one write (grep leaves at its match, the writer gets SIGPIPE).
models=$(segnode models --config /etc/segnode/segnode.yaml) || fail "segnode models failed"
grep -q "^site-brain " <<<"$models" || fail "the site's bundle is not listed"
grep -q "^brain-mr-student-w4 " <<<"$models" || fail "the packaged bundles are not listed"
systemd-analyze verify /lib/systemd/system/segnoded.service || fail "systemd-analyze verify"
systemd-analyze security --offline=true /lib/systemd/system/segnoded.service | grep "Overall exposure level"

# Free ports for this run, in the installed (edited: a conffile now differs) config.
read -r dicom_port http_port < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1",0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
sed -i "s/^  port: 11112 /  port: $dicom_port /; s/^  port: 8104 /  port: $http_port /" /etc/segnode/segnode.yaml
sed -i "s/^  quiet_period_s: 10 /  quiet_period_s: 2 /" /etc/segnode/segnode.yaml
# An upgrade (the same package again) keeps the edited conffile.
dpkg -i "$deb" >/dev/null </dev/null
grep -q "^  port: $dicom_port " /etc/segnode/segnode.yaml || fail "reinstalling overwrote the edited /etc/segnode/segnode.yaml"
(cd /var/lib/segnode && exec setpriv --reuid=segnode --regid=segnode --init-groups --inh-caps=-all --bounding-set=-all \
   --no-new-privs /usr/bin/segnoded --config /etc/segnode/segnode.yaml) >/tmp/segnode-deb-test.log 2>&1 &
node=$!
wait_for 30 echoscu -aet STORESCU -aec SEGNODE 127.0.0.1 "$dicom_port" || fail "no C-ECHO answer"
wait_for 30 curl -sf "http://127.0.0.1:$http_port/readyz" || fail "/readyz is not 200"
[[ $(ps -o user= -p "$node") == segnode ]] || fail "segnoded does not run as segnode"
echo "segnoded runs as segnode, answers C-ECHO and /readyz"
if [[ -d $series ]]; then
  storescu -aet STORESCU -aec SEGNODE 127.0.0.1 "$dicom_port" "$series"/*.dcm || fail "storescu"
  jobs_done() { local j; j=$(segnode jobs --config /etc/segnode/segnode.yaml --state done --json) && grep -q brain-mr-student-w2 <<<"$j"; }
  wait_for 180 jobs_done || fail "the series' job did not finish"
  ls /var/lib/segnode/out/*.dcm >/dev/null || fail "no SEG written"
  echo "the series was segmented by the packaged model: $(ls /var/lib/segnode/out)"
else
  echo "SKIPPED: sending a series ($series is absent)"
fi
kill -TERM "$node"
wait_for 30 bash -c "! kill -0 $node" || fail "segnoded did not stop on SIGTERM within 30 s"
wait "$node" && rc=0 || rc=$?
node=
[[ $rc == 0 ]] || fail "segnoded exited $rc on SIGTERM"

dpkg -r segnode >/dev/null
[[ ! -e /usr/bin/segnoded ]] || fail "dpkg -r left /usr/bin/segnoded"
[[ -f /etc/segnode/segnode.yaml && -d /var/lib/segnode ]] || fail "dpkg -r removed the config or the state"
dpkg --purge segnode >/dev/null
[[ ! -e /etc/segnode && ! -e /var/lib/segnode && ! -e /usr/share/segnode ]] || fail "dpkg --purge left files"
left=$(getent passwd segnode >/dev/null && echo "the segnode system user (Debian keeps system users)" || echo nothing)
echo "after purge: $left"
echo "deb_test: ok"
