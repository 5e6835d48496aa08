#!/usr/bin/env python3
"""Where one structure of a prediction and of a reference disagree, on the real CT (issue 15).

Dice alone cannot tell a model that misses an organ from one that draws it under another
convention. This prints both volumes, how much of the reference the prediction covers (recall)
and how much of the prediction the reference holds (precision), which reference labels the extra
voxels lie on, and how far the disagreements lie from the other's surface.

  python3 bench/ct-real-overlap.py PREDICTION.nii.gz REFERENCE.nii.gz PREDICTED_LABEL REFERENCE_LABEL

For the one real CT, pancreas (FLARE22 label 4, TotalSegmentator label 7):
  build/bin/segnode segment --model abdomen-ct-teacher --output /tmp/ct.nii.gz \
    --input ../shared/data/abdomen_ct/totalseg_example_ct/example_ct.nii.gz
  python3 bench/ct-real-overlap.py /tmp/ct.nii.gz \
    ../shared/data/abdomen_ct/totalseg_example_ct/example_seg_fast_force_split.nii.gz 4 7
"""
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage


def main(prediction, reference, predicted_label, reference_label):
    pred_img, ref_img = nib.load(prediction), nib.load(reference)
    if pred_img.shape != ref_img.shape or not np.allclose(pred_img.affine, ref_img.affine, atol=1e-3):
        sys.exit(f"{prediction} and {reference} are not on one grid: resample one first")
    labels = np.asanyarray(pred_img.dataobj).astype(np.int32)
    ref = np.asanyarray(ref_img.dataobj).astype(np.int32)
    spacing = ref_img.header.get_zooms()[:3]
    ml = float(np.prod(spacing)) / 1000.0
    p, r = labels == predicted_label, ref == reference_label
    if not p.any() or not r.any():
        sys.exit(f"label {predicted_label} predicted: {p.sum()} voxels, label {reference_label} in the reference: {r.sum()}")
    both = (p & r).sum()
    print(f"predicted {p.sum() * ml:.1f} mL, reference {r.sum() * ml:.1f} mL, both {both * ml:.1f} mL")
    print(f"Dice {2 * both / (p.sum() + r.sum()):.3f}, recall {both / r.sum():.3f}, precision {both / p.sum():.3f}")
    extra, missed = p & ~r, r & ~p
    values, counts = np.unique(ref[extra], return_counts=True)
    print("predicted beyond the reference, by reference label (mL): " +
          ", ".join(f"{v}: {c * ml:.1f}" for v, c in zip(values, counts)))
    if extra.any():
        d = ndimage.distance_transform_edt(~r, sampling=spacing)[extra]
        print(f"  distance to the reference structure: median {np.median(d):.1f} mm, 90th percentile {np.percentile(d, 90):.1f} mm")
    if missed.any():
        values, counts = np.unique(labels[missed], return_counts=True)
        print("reference not predicted, by predicted label (mL): " +
              ", ".join(f"{v}: {c * ml:.1f}" for v, c in zip(values, counts)))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__.split("\n\n")[2])
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
