#pragma once
// The header attributes of one received DICOM instance, in plain types: what the DICOM part reads
// (daemon/dicom/InstanceReader) and the index stores (storage::InstanceRecord extends it), so that
// neither depends on the other and DCMTK stays inside daemon/dicom/.
#include <cstdint>
#include <optional>
#include <string>

namespace segnode {

struct InstanceHeader {
  std::string studyUid, seriesUid, sopInstanceUid, sopClassUid, transferSyntax;
  std::string patientId, patientName, studyDate, studyTime, accessionNumber, studyDescription;
  std::string modality, bodyPart, seriesDescription, frameOfReference;
  std::optional<int64_t> seriesNumber, instanceNumber, numberOfFrames, rows, columns;
  std::string imageType, imagePosition, imageOrientation, pixelSpacing, sliceThickness;  // DICOM strings, as sent
};

}  // namespace segnode
