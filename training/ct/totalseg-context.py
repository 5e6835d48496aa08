#!/usr/bin/python3
"""One context label map from a TotalSegmentator subject's binary masks (issue 15, the body-context
arm of the CT synthesis: training/Synth.h, --context-maps). The 13 FLARE22 organs keep FLARE22's
values 1-13 (the synthesiser aligns the context to each FLARE22 map by their centroids); the body
context gets the generation values of training/ct/abdomen-ct-generation.tsv:
  110 bone (vertebrae, ribs, sacrum, hips, femora, sternum, costal cartilage, shoulder girdle)
  111 muscle and other soft tissue (back, psoas and gluteal muscles, spinal cord, prostate)
  112 bowel (small bowel, colon)
  113 lung and airway
  114 fluid (urinary bladder, kidney cysts)
  115 blood pool outside the 13 organs (portal and splenic vein, iliac vessels, heart, great vessels)
Masks outside the abdomen's neighbourhood (brain, skull, thyroid) are left out. Later rows paint
over earlier ones; the organs go last.
Licence: the TotalSegmentator dataset is CC BY 4.0 (Wasserthal et al. 2023): a bundle trained with
this context says so in its provenance.
  /usr/bin/python3 training/ct/totalseg-context.py SUBJECT_MASK_DIR OUT.nii.gz
"""
import fnmatch
import os
import sys

import nibabel as nib
import numpy as np

CONTEXT = [
    (110, ["vertebrae_*", "rib_*", "sacrum", "hip_*", "femur_*", "sternum", "costal_cartilages",
           "scapula_*", "clavicula_*", "humerus_*"]),
    (111, ["autochthon_*", "iliopsoas_*", "gluteus_*", "spinal_cord", "prostate"]),
    (112, ["small_bowel", "colon"]),
    (113, ["lung_*", "trachea"]),
    (114, ["urinary_bladder", "kidney_cyst_*"]),
    (115, ["portal_vein_and_splenic_vein", "iliac_*", "heart", "atrial_appendage_*", "pulmonary_vein",
           "superior_vena_cava", "brachiocephalic_*", "common_carotid_*", "subclavian_*"]),
]
ORGANS = {"liver": 1, "kidney_right": 2, "spleen": 3, "pancreas": 4, "aorta": 5, "inferior_vena_cava": 6,
          "adrenal_gland_right": 7, "adrenal_gland_left": 8, "gallbladder": 9, "esophagus": 10,
          "stomach": 11, "duodenum": 12, "kidney_left": 13}


def main(src, out):
    names = sorted(f[:-7] for f in os.listdir(src) if f.endswith(".nii.gz"))
    ref = nib.load(os.path.join(src, names[0] + ".nii.gz"))
    labels = np.zeros(ref.shape, np.int16)
    rows = [(v, n) for v, patterns in CONTEXT for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)]
    rows += [(v, n) for n, v in ORGANS.items() if n in names]
    for value, name in rows:
        mask = nib.load(os.path.join(src, name + ".nii.gz"))
        if not np.allclose(mask.affine, ref.affine, atol=1e-3):
            sys.exit(f"{name}: grid differs from {names[0]}")
        labels[np.asanyarray(mask.dataobj) > 0] = value
    missing = [n for n in ORGANS if n not in names or not (labels == ORGANS[n]).any()]
    if len(ORGANS) - len(missing) < 6:
        sys.exit(f"{src}: only {len(ORGANS) - len(missing)} of the 13 organs, too few to align by")
    header = ref.header.copy()
    header.set_data_dtype(np.int16)
    nib.save(nib.Nifti1Image(labels, ref.affine, header), out)
    counts = {v: int((labels == v).sum()) for v in sorted(set(np.unique(labels)) - {0})}
    print(out, "voxels per value:", counts, "organs missing:", missing or "none")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(*sys.argv[1:])
