#!/usr/bin/python3
"""Writes a NIfTI volume in Hounsfield units as a CT series the way a scanner sends one: one CT
Image Storage file per axial slice, int16 pixels, RescaleSlope 1 and RescaleIntercept 0, the
NIfTI's geometry in DICOM's patient coordinates (NIfTI's RAS+ to DICOM's LPS+). For a test or a
benchmark that needs a CT as DICOM (there is none in ../shared/data): bench/memory-daemon.sh and
the node's real-CT pipeline test (tests/node/test_pipeline.cpp).
    nifti-to-ct-dicom.py IN.nii[.gz] OUT_DIR [SERIES_DESCRIPTION]
"""
import os
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def main(source, out, description):
    image = nib.load(source)
    volume = np.asanyarray(image.dataobj)
    if volume.ndim != 3:
        sys.exit(f"{source}: {volume.ndim} dimensions, a CT volume has 3")
    if volume.min() < -32768 or volume.max() > 32767:
        sys.exit(f"{source}: values beyond int16, not Hounsfield units")
    volume = np.round(volume).astype(np.int16)
    affine = image.affine
    # Columns run along NIfTI's i, rows along j, slices along k.
    row_dir, col_dir = RAS_TO_LPS @ affine[:3, 0], RAS_TO_LPS @ affine[:3, 1]
    spacing_i, spacing_j = np.linalg.norm(row_dir), np.linalg.norm(col_dir)
    spacing_k = np.linalg.norm(affine[:3, 2])
    orientation = [float(v) for v in np.concatenate([row_dir / spacing_i, col_dir / spacing_j])]
    os.makedirs(out, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(volume.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID, ds.StudyID, ds.AccessionNumber = "Test^CT", "TEST-CT", "1", ""
        ds.Modality, ds.BodyPartExamined, ds.SeriesDescription = "CT", "ABDOMEN", description
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImagePositionPatient = [float(v) for v in RAS_TO_LPS @ (affine @ [0, 0, k, 1])[:3]]
        ds.ImageOrientationPatient = orientation
        ds.PixelSpacing, ds.SliceThickness = [float(spacing_j), float(spacing_i)], float(spacing_k)
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope = 0, 1
        ds.PixelData = np.ascontiguousarray(volume[:, :, k].T).tobytes()  # rows are j
        ds.is_little_endian, ds.is_implicit_VR = True, False
        ds.save_as(os.path.join(out, f"{k:04d}.dcm"), write_like_original=False)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[-1].strip())
    main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) == 4 else "CT from " + os.path.basename(sys.argv[1]))
