#!/usr/bin/python3
"""The real example CT as a scanner's field of view shows it (issue 15, the CT body crop).

TotalSegmentator's example CT is cut to the body's box (366 x 303 mm); an abdominal series that a
PACS sends holds the whole reconstruction field of view, typically 400-500 mm square with the body
in its middle. This writes the example placed in the middle of a square FOV of each --fovs size in mm (air
around it: -983 +- 26 HU, the mean and spread of the example's own air below -900 HU, drawn with a
fixed seed) and its reference labels padded with 0, and the cases file that evaluates the example
as it is (group real-totalseg-example) and in those FOVs (group real-totalseg-fov), with the
structure table of training/eval/abdomen-ct-cases.yaml. The FOVs differ in size so that the
sliding window's tiles fall on the body at different places in each.
  bench/ct-fov.py SHARED_DATA OUT_DIR [--fovs 400,440,480,520]
"""
import argparse
import copy
import pathlib

import nibabel as nib
import numpy as np
import yaml

EXAMPLE = "abdomen_ct/totalseg_example_ct"
AIR_MEAN, AIR_SD = -983.0, 26.0


def pad(img, fov_mm, fill):
    """img padded in x and y to fov_mm, centred; fill(shape) gives the new voxels."""
    data = np.asanyarray(img.dataobj)
    zooms = img.header.get_zooms()[:3]
    target = [max(data.shape[a], int(round(fov_mm / zooms[a]))) if a < 2 else data.shape[a] for a in range(3)]
    before = [(target[a] - data.shape[a]) // 2 for a in range(3)]
    out = fill(target).astype(data.dtype)
    out[before[0]:before[0] + data.shape[0], before[1]:before[1] + data.shape[1], :] = data
    affine = img.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array(before, dtype=float)  # the same world position per voxel
    return nib.Nifti1Image(out, affine, img.header)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shared")
    ap.add_argument("out")
    ap.add_argument("--fovs", default="400,440,480,520")
    args = ap.parse_args()
    shared, out = pathlib.Path(args.shared).resolve(), pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(480)
    ct = nib.load(shared / EXAMPLE / "example_ct.nii.gz")
    seg = nib.load(shared / EXAMPLE / "example_seg_fast_force_split.nii.gz")
    cases = yaml.safe_load((pathlib.Path(__file__).parent.parent / "training/eval/abdomen-ct-cases.yaml").read_text())
    real = next(c for c in cases["cases"] if c["name"] == "totalseg-example")
    out_cases = [dict(copy.deepcopy(real), image=str(shared / EXAMPLE / "example_ct.nii.gz"),
                      reference=str(shared / EXAMPLE / "example_seg_fast_force_split.nii.gz"))]
    for fov in [int(f) for f in args.fovs.split(",")]:
        image, labels = f"example_ct_fov{fov}.nii.gz", f"example_seg_fov{fov}.nii.gz"
        nib.save(pad(ct, fov, lambda s: np.round(rng.normal(AIR_MEAN, AIR_SD, s))), out / image)
        nib.save(pad(seg, fov, lambda s: np.zeros(s)), out / labels)
        out_cases.append(dict(copy.deepcopy(real), name=f"totalseg-example-fov{fov}", group="real-totalseg-fov",
                              image=image, reference=labels))
    (out / "cases.yaml").write_text("# written by bench/ct-fov.py\n" +
                                    yaml.safe_dump({"cases": out_cases}, sort_keys=False, default_flow_style=None))


if __name__ == "__main__":
    main()
