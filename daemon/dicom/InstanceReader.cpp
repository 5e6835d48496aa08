#include "daemon/dicom/InstanceReader.h"

#include <dcmtk/dcmdata/dctk.h>

#include "common/Error.h"

namespace segnode::dicom {
namespace {

std::string text(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  if (item.findAndGetOFStringArray(tag, v).good()) return std::string(v.c_str());
  return {};
}

std::optional<int64_t> integer(DcmItem& item, const DcmTagKey& tag) {
  OFString v;
  if (item.findAndGetOFString(tag, v).bad() || v.empty()) return std::nullopt;
  try {
    return std::stoll(std::string(v.c_str()));
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

InstanceHeader readInstanceHeader(const std::filesystem::path& file) {
  DcmFileFormat ff;
  OFCondition c = ff.loadFileUntilTag(file.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect,
                                      DCM_PixelData);
  if (c.bad()) throw Error(ErrorCode::BadInput, file.string() + ": not readable as DICOM: " + c.text());
  DcmDataset& ds = *ff.getDataset();
  DcmMetaInfo& meta = *ff.getMetaInfo();
  InstanceHeader r;
  r.studyUid = text(ds, DCM_StudyInstanceUID);
  r.seriesUid = text(ds, DCM_SeriesInstanceUID);
  r.sopInstanceUid = text(ds, DCM_SOPInstanceUID);
  r.sopClassUid = text(ds, DCM_SOPClassUID);
  r.transferSyntax = text(meta, DCM_TransferSyntaxUID);
  r.patientId = text(ds, DCM_PatientID);
  r.patientName = text(ds, DCM_PatientName);
  r.studyDate = text(ds, DCM_StudyDate);
  r.studyTime = text(ds, DCM_StudyTime);
  r.accessionNumber = text(ds, DCM_AccessionNumber);
  r.studyDescription = text(ds, DCM_StudyDescription);
  r.modality = text(ds, DCM_Modality);
  r.bodyPart = text(ds, DCM_BodyPartExamined);
  r.seriesDescription = text(ds, DCM_SeriesDescription);
  r.frameOfReference = text(ds, DCM_FrameOfReferenceUID);
  r.seriesNumber = integer(ds, DCM_SeriesNumber);
  r.instanceNumber = integer(ds, DCM_InstanceNumber);
  r.numberOfFrames = integer(ds, DCM_NumberOfFrames);
  r.rows = integer(ds, DCM_Rows);
  r.columns = integer(ds, DCM_Columns);
  r.imageType = text(ds, DCM_ImageType);
  r.imagePosition = text(ds, DCM_ImagePositionPatient);
  r.imageOrientation = text(ds, DCM_ImageOrientationPatient);
  r.pixelSpacing = text(ds, DCM_PixelSpacing);
  r.sliceThickness = text(ds, DCM_SliceThickness);
  return r;
}

}  // namespace segnode::dicom
