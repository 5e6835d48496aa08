#!/usr/bin/env python3
"""Where a student's errors lie: on the reference's boundaries, or inside structures (issue 10).

A student that misplaces boundaries by a voxel lacks detail at full resolution, where the
boundaries are drawn; one that confuses whole regions lacks context, which the deep stages hold.
The two call for different allocations of a parameter budget over the stages
(`segnode-distill distill --features-per-stage`). For every prediction this prints how many
voxels differ from the reference, and how far they lie from the nearest reference boundary (a
voxel whose 6-neighbourhood holds another label), for all its errors and for its excess over the
first prediction (voxels it gets wrong where the first, the teacher, is right).

  python3 bench/boundary-errors.py REFERENCE.nii.gz TEACHER.nii.gz [STUDENT.nii.gz ...]

The brain validation cases (docs/models.md, "Reallocated widths"):
  build/bin/segnode-distill synth --template etc/templates/brain-mr-synthseg.yaml --seed 2000 --device cpu \
    --labels $S/training_seg_18.nii.gz,$S/training_seg_19.nii.gz --table $S/synthseg_generation_label_table.tsv --out /tmp/val
  build/bin/segnode segment --model M --input /tmp/val/training_seg_18_t1-1mm_image.nii.gz --output /tmp/18-M.nii.gz
  (M: brain-mr-teacher, brain-mr-student-w2, brain-mr-student-w4), then
  python3 bench/boundary-errors.py /tmp/val/training_seg_18_t1-1mm_labels.nii.gz /tmp/18-brain-mr-teacher.nii.gz \
    /tmp/18-brain-mr-student-w2.nii.gz /tmp/18-brain-mr-student-w4.nii.gz
(S: ../shared/data/brain_mr/synthseg_label_maps).
"""
import os
import sys

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi


def labels(path):
    return np.asanyarray(nib.load(path).dataobj).astype(np.int32)


def distance_to_boundary(ref):
    boundary = np.zeros(ref.shape, bool)
    for axis in range(3):
        differs = np.diff(ref, axis=axis) != 0
        before = [slice(None)] * 3
        after = [slice(None)] * 3
        before[axis], after[axis] = slice(0, -1), slice(1, None)
        boundary[tuple(before)] |= differs
        boundary[tuple(after)] |= differs
    return ndi.distance_transform_edt(~boundary)


def row(name, what, wrong, distance):
    n = int(wrong.sum())
    d = distance[wrong]
    share = (lambda m: f"{m.mean():.2f}") if n else (lambda m: "-")
    print(f"| {name} | {what} | {n:,} | {share(d <= 1)} | {share(d <= 2)} | {share(d > 3)} |")


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    ref = labels(argv[1])
    distance = distance_to_boundary(ref)
    teacher = labels(argv[2])
    teacher_right = teacher == ref
    print("| prediction | voxels | count | <= 1 voxel from a boundary | <= 2 | > 3 |")
    print("|---|---|---:|---:|---:|---:|")
    row(os.path.basename(argv[2]), "errors", ~teacher_right, distance)
    for path in argv[3:]:
        pred = labels(path)
        if pred.shape != ref.shape:
            sys.exit(f"{path}: shape {pred.shape}, the reference's {ref.shape}")
        wrong = pred != ref
        row(os.path.basename(path), "errors", wrong, distance)
        row(os.path.basename(path), "excess over the first", wrong & teacher_right, distance)


if __name__ == "__main__":
    main(sys.argv)
