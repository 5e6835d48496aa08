#!/usr/bin/env python3
"""systemd's notify protocol, spoken to a real segnoded (issue 13), with no systemd: the test is the
service manager. It binds NOTIFY_SOCKET, sets WATCHDOG_USEC, starts segnoded on loopback ports
and checks READY=1 only once the DICOM port answers, WATCHDOG=1 pings at least every 2 s, a
SIGHUP that brings RELOADING=1 then READY=1 (and makes a route take a newly installed model
version), and STOPPING=1 then exit 0 on SIGTERM. Every wait is bounded.
    notify_test.py SEGNODED SEGNODE SOURCE_DIR"""
import os, re, signal, socket, subprocess, sys, tempfile, time

segnoded, segnode, src = sys.argv[1:4]
work = tempfile.mkdtemp(prefix="segnode-notify-")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fail(why):
    print("FAIL:", why)
    print(open(os.path.join(work, "log")).read()[-3000:])
    sys.exit(1)


models = os.path.join(work, "models")
def install(version):
    subprocess.run([segnode, "models", "init", "--template", os.path.join(src, "etc/templates/brain-mr-synthseg.yaml"),
                    "--name", "tiny-brain", "--version", version, "--width-divisor", "8", "--models-dir", models],
                   check=True, stdout=subprocess.DEVNULL)
install("0.0.1")
dicom_port, http_port = free_port(), free_port()
config = os.path.join(work, "segnode.yaml")
with open(config, "w") as f:
    f.write(f"""dicom:
  port: {dicom_port}
  peers: [{{ae_title: STORESCU, host: 127.0.0.1}}]
storage: {{spool_dir: {work}/spool, database: {work}/db.sqlite, min_free_mb: 10}}
processing: {{models_dir: {models}, output_dir: {work}/out}}
destinations: [{{name: pacs, ae_title: NOBODY, host: 127.0.0.1, port: {free_port()}}}]
routes: [{{name: brain, match: {{modality: MR}}, model: tiny-brain, destinations: [pacs]}}]
http: {{port: {http_port}}}
""")

sock_path = os.path.join(work, "notify")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sock_path)
sock.settimeout(0.2)
env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="2000000")
log = open(os.path.join(work, "log"), "w")
node = subprocess.Popen([segnoded, "--config", config], env=env, stdout=log, stderr=subprocess.STDOUT)
messages = []  # (time, message)


def receive_until(pred, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            messages.append((time.monotonic(), sock.recv(4096).decode()))
        except socket.timeout:
            pass
        if pred():
            return True
    return False


def signal_until(sig, state, seconds):
    """Sends `sig` to the node; the messages from then on, once one carries `state`."""
    mark = len(messages)
    node.send_signal(sig)
    if not receive_until(lambda: any(state in m for _, m in messages[mark:]), seconds):
        fail(f"no {state} within {seconds} s of signal {sig}")
    return [m for _, m in messages[mark:]]


def echo_answers():
    return subprocess.run(["echoscu", "-aet", "STORESCU", "-aec", "SEGNODE", "127.0.0.1", str(dicom_port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


try:
    if not receive_until(lambda: any("READY=1" in m for _, m in messages), 30):
        fail("no READY=1 within 30 s")
    if not echo_answers():
        fail("READY=1 was sent, but the DICOM port does not answer C-ECHO")
    status = [m for _, m in messages if "READY=1" in m][0]
    print("READY:", status.replace("\n", " | "))

    start = time.monotonic()
    receive_until(lambda: time.monotonic() - start > 6, 7)
    pings = [t for t, m in messages if "WATCHDOG=1" in m and t >= start]
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    print(f"watchdog: {len(pings)} pings in 6 s, longest gap {max(gaps) if gaps else 0:.2f} s")
    if len(pings) < 3 or max(gaps) > 2.0:
        fail("WATCHDOG=1 not sent at least every 2 s (WATCHDOG_USEC=2000000)")

    install("0.0.2")
    after = signal_until(signal.SIGHUP, "READY=1", 30)
    if not any("RELOADING=1" in m for m in after[:[i for i, m in enumerate(after) if "READY=1" in m][0] + 1]):
        fail("no RELOADING=1 before READY=1 on SIGHUP")
    if not re.search(r"loaded tiny-brain@0\.0\.2", open(os.path.join(work, "log")).read()):
        fail("after SIGHUP the route did not take the newly installed tiny-brain 0.0.2")
    print("SIGHUP: RELOADING=1, READY=1; the route now runs tiny-brain 0.0.2")

    signal_until(signal.SIGTERM, "STOPPING=1", 10)
    rc = node.wait(timeout=30)
    if rc != 0:
        fail(f"exit code {rc} after SIGTERM")
    print("SIGTERM: STOPPING=1, exit 0")
    print("notify_test: ok")
finally:
    if node.poll() is None:
        node.kill()
