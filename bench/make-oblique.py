#!/usr/bin/python3
"""Writes an oblique axial NIfTI made from a 1 mm head volume, shaped like a GE 3D T1 (issue 14):
in-plane 0.94 mm, 1.2 mm slices, the slice plane tilted 15 degrees about left-right and 8 about
anterior-posterior. Cubic resampling (scipy) of the source; the field of view is centred on it.
  bench/make-oblique.py SOURCE.nii.gz OUT.nii.gz [--size 256,256,130]
"""
import argparse

import nibabel as nib
import numpy as np
from scipy.ndimage import map_coordinates


def rotation(axis, degrees):
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--size", default="256,256,130")
    args = ap.parse_args()
    src = nib.load(args.source)
    data = np.asanyarray(src.dataobj).astype(np.float32)
    size = np.array([int(v) for v in args.size.split(",")])
    spacing = np.array([0.94, 0.94, 1.2])
    direction = rotation(0, 15) @ rotation(1, 8)
    centre = src.affine @ np.append((np.array(data.shape) - 1) / 2, 1)
    origin = centre[:3] - direction @ (spacing * (size - 1) / 2)
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing
    affine[:3, 3] = origin
    # Output voxel -> world -> source voxel, for every output voxel (one slice at a time).
    to_src = np.linalg.inv(src.affine) @ affine
    out = np.zeros(size, np.float32)
    ii, jj = np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij")
    for k in range(size[2]):
        vox = np.stack([ii.ravel(), jj.ravel(), np.full(ii.size, k), np.ones(ii.size)])
        coords = (to_src @ vox)[:3]
        out[:, :, k] = map_coordinates(data, coords, order=3, mode="constant").reshape(ii.shape)
    out = np.clip(out, 0, None).astype(np.int16)
    img = nib.Nifti1Image(out, affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, args.out)


if __name__ == "__main__":
    main()
