#!/usr/bin/env python3
"""A bundle from a training state's EMA weights, for evaluating a run between device calls.

A run writes its EMA bundle when a call ends; a pack taken while it still runs (students.sh watch,
collect SECONDS) has only the state. This copies the "ema.*" tensors of NAME.state.safetensors
(training/TrainState.h) into a weights.safetensors beside a copy of an installed bundle.yaml of
the same architecture, with the version given, its metrics, plausibility and provenance sections
left out (they belong to the other weights), a provenance that names the state and its step, and
the new sha256. Never an install: `segnode-distill export`
does that, from a finished run's own bundle.
  python3 training/gpu/ema-bundle.py STATE_DIR NAME LIKE_BUNDLE_DIR VERSION OUT_DIR
"""
import hashlib
import json
import re
import struct
import sys
from pathlib import Path


def ema_tensors(state_file):
    data = state_file.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    for key, v in sorted(header.items()):
        if key.startswith("ema."):
            a, b = v["data_offsets"]
            yield key[4:], v["dtype"], v["shape"], data[8 + n + a : 8 + n + b]


def write_safetensors(path, tensors, bundle):
    header, blobs, offset = {}, [], 0
    for key, dtype, shape, blob in tensors:
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    header["__metadata__"] = {"format": "pt", "bundle": bundle}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def bundle_yaml(like, version, sha256, provenance):
    kept, skip = [], False
    for line in (like / "bundle.yaml").read_text().split("\n"):
        if re.match(r"^[a-z_]+:", line):
            skip = line.startswith(("metrics:", "plausibility:", "provenance:"))
        if not skip:
            kept.append(line)
    text = re.sub(r"^version: .*$", "version: " + version, "\n".join(kept), count=1, flags=re.M)
    text = re.sub(r"sha256: [0-9a-f]{64}", "sha256: " + sha256, text)
    return text.rstrip("\n") + "\nprovenance:\n  interim: " + json.dumps(provenance) + "\n"


def main(state_dir, name, like, version, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = list(ema_tensors(Path(state_dir) / (name + ".state.safetensors")))
    if not tensors:
        sys.exit(f"{state_dir}: no ema.* tensors for {name}")
    write_safetensors(out / "weights.safetensors", tensors, name)
    sha = hashlib.sha256((out / "weights.safetensors").read_bytes()).hexdigest()
    step = re.search(r"^step: (\d+)", (Path(state_dir) / "state.yaml").read_text(), re.M).group(1)
    note = f"EMA weights of {state_dir} at step {step} (training/gpu/ema-bundle.py); not a release"
    (out / "bundle.yaml").write_text(bundle_yaml(Path(like), version, sha, note))
    print(out)


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
