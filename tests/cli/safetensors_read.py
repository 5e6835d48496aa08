"""A bundle's weights for the CLI end-to-end tests: safetensors read with the standard library and
numpy alone (Debian has no python3-safetensors), float32 tensors by name, with their shapes."""
import json
import struct

import numpy as np


def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    return {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32).reshape(v["shape"])
            for k, v in head.items() if k != "__metadata__"}
