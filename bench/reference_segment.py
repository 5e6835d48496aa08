#!/usr/bin/python3
"""Reference implementation of `segnode segment` in plain PyTorch (Debian's python3-torch).

It runs the same bundle (bundle.yaml + weights.safetensors) through the same pipeline the way an
nnU-Net-style Python predictor does: nibabel in, reorient to the canonical (L, P, S) axes, crop to
the non-zero box, z-score / CT normalisation, zero-pad to the patch, Gaussian-weighted sliding
window with eager torch.nn modules accumulating float32 logits, argmax, back to the input grid,
nibabel out. It exists to be measured side by side with segnode (bench/engine.sh) and to check
that both give the same labels. Resampling is not implemented here: use it on volumes already at
the bundle spacing (the benchmark volume is).
"""
import argparse
import json
import math
import struct
import sys
import time

import nibabel as nib
import numpy as np
import torch
import yaml
from torch import nn

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, d in header.items():
        if name == "__metadata__":
            continue
        b, e = d["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=DTYPES[d["dtype"]]).reshape(d["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def zyx(t):  # bundle triples are (x, y, z); tensors are [N, C, z, y, x]
    return (t[2], t[1], t[0])


class ConvNormAct(nn.Module):
    def __init__(self, cin, cout, kernel, stride, bias):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, zyx(kernel), zyx(stride), tuple(k // 2 for k in zyx(kernel)), bias=bias)
        self.norm = nn.InstanceNorm3d(cout, eps=1e-5, affine=True)

    def forward(self, x):
        return nn.functional.leaky_relu(self.norm(self.conv(x)), 0.01, inplace=True)


class PlainConvUNet(nn.Module):
    def __init__(self, a, num_classes):
        super().__init__()
        f, k, s = a["features_per_stage"], a["kernel_sizes"], a["strides"]
        n, bias = a["n_stages"], a.get("conv_bias", True)
        self.encoder = nn.ModuleList()
        for i in range(n):
            convs = [ConvNormAct(a.get("in_channels", 1) if i == 0 else f[i - 1], f[i], k[i], s[i], bias)]
            convs += [ConvNormAct(f[i], f[i], k[i], [1, 1, 1], bias) for _ in range(a["n_conv_per_stage"][i] - 1)]
            self.encoder.append(nn.Sequential(*convs))
        self.upsample, self.decoder, self.heads = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for i in range(n - 2, -1, -1):
            self.upsample.append(nn.ConvTranspose3d(f[i + 1], f[i], zyx(s[i + 1]), zyx(s[i + 1])))
            convs = [ConvNormAct(2 * f[i] if c == 0 else f[i], f[i], k[i], [1, 1, 1], bias)
                     for c in range(a["n_conv_per_stage_decoder"][i])]
            self.decoder.append(nn.Sequential(*convs))
            self.heads.append(nn.Conv3d(f[i], num_classes, 1))

    def forward(self, x):
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for d in range(len(self.decoder)):
            x = self.upsample[d](x)
            x = torch.cat([x, skips[-2 - d]], 1)
            x = self.decoder[d](x)
        return self.heads[-1](x)


def gaussian(tile):
    axes = []
    for n in tile:  # (z, y, x)
        c, sigma = n // 2, n / 8.0
        i = np.arange(n, dtype=np.float64)
        axes.append(np.exp(-0.5 * (i - c) ** 2 / sigma**2))
    g = axes[0][:, None, None] * axes[1][None, :, None] * axes[2][None, None, :]
    g = g / g.max()
    g[g == 0] = g[g > 0].min()
    return torch.from_numpy(g.astype(np.float32))


def starts(size, tile, step):
    if size <= tile:
        return [0]
    n = math.ceil((size - tile) / (tile * step)) + 1
    actual = (size - tile) / (n - 1)
    return [int(round(actual * i)) for i in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bundle", required=True)
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--step", type=float, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()

    spec = yaml.safe_load(open(f"{args.bundle}/bundle.yaml"))
    labels = [l["value"] for l in spec["labels"]]
    net = PlainConvUNet(spec["architecture"], len(labels))
    net.load_state_dict(read_safetensors(f"{args.bundle}/{spec['weights']['file']}"))
    net.eval()
    tile = zyx(spec["inference"]["patch_size"])
    step = args.step or spec["inference"]["tile_step"]

    img = nib.load(args.input)
    data = np.asarray(img.dataobj, dtype=np.float32)  # [i, j, k]
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
    ornt = nib.orientations.io_orientation(lps)  # index axis -> (world axis, sign) in LPS
    canon = nib.orientations.apply_orientation(data, ornt)  # axes now (L, P, S), positive
    vol = np.ascontiguousarray(canon.transpose(2, 1, 0))  # [z, y, x]

    nz = np.nonzero(vol)
    box = [(a.min(), a.max() + 1) for a in nz] if nz[0].size else [(0, s) for s in vol.shape]
    crop = vol[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]]
    pre = spec["preprocessing"]
    if pre["normalization"] == "ct":
        ct = pre["ct"]
        crop = (np.clip(crop, ct["clip_low"], ct["clip_high"]) - ct["mean"]) / max(ct["std"], 1e-8)
    else:
        crop = (crop - crop.mean(dtype=np.float64)) / max(crop.std(dtype=np.float64), 1e-8)
    image = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))

    size = image.shape
    padded = [max(s, t) for s, t in zip(size, tile)]
    lo = [(p_ - s) // 2 for p_, s in zip(padded, size)]
    if list(padded) != list(size):
        big = torch.zeros(padded)
        big[lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + size[2]] = image
        image = big
    g = gaussian(tile)
    logits = torch.zeros([len(labels)] + padded, dtype=torch.float32)
    weights = torch.zeros(padded, dtype=torch.float32)
    with torch.inference_mode():
        for z in starts(padded[0], tile[0], step):
            for y in starts(padded[1], tile[1], step):
                for x in starts(padded[2], tile[2], step):
                    sl = (slice(z, z + tile[0]), slice(y, y + tile[1]), slice(x, x + tile[2]))
                    out = net(image[sl][None, None])[0]
                    logits[(slice(None),) + sl] += out * g
                    weights[sl] += g
    logits /= weights
    logits = logits[:, lo[0]:lo[0] + size[0], lo[1]:lo[1] + size[1], lo[2]:lo[2] + size[2]]
    classes = logits.argmax(0).numpy().astype(np.uint8)

    full = np.zeros(vol.shape, dtype=np.uint8)
    full[box[0][0]:box[0][1], box[1][0]:box[1][1], box[2][0]:box[2][1]] = classes
    inverse = np.zeros_like(ornt)
    for axis, (target, sign) in enumerate(ornt):
        inverse[int(target)] = (axis, sign)
    back = nib.orientations.apply_orientation(full.transpose(2, 1, 0), inverse)
    out = np.asarray(labels, dtype=np.uint8)[back]
    nib.save(nib.Nifti1Image(out, img.affine), args.output)
    print(f"reference: {args.input} -> {args.output}: {time.time() - t0:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
