#include "daemon/dicom/SegWriter.h"

#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmfg/fgderimg.h>
#include <dcmtk/dcmfg/fgfracon.h>
#include <dcmtk/dcmfg/fgpixmsr.h>
#include <dcmtk/dcmfg/fgplanor.h>
#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmiod/cielabutil.h>
#include <dcmtk/dcmiod/iodmacro.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>

#include <cstdio>
#include <algorithm>
#include <ctime>
#include <memory>

#include "common/Error.h"
#include "common/Uid.h"

namespace segnode::dicom {
namespace {

void check(const OFCondition& c, const std::string& what) {
  if (c.bad()) throw Error(ErrorCode::BadInput, "DICOM-SEG: " + what + ": " + c.text());
}

std::string ds(double v) {  // Decimal String: at most 16 characters
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  std::string s = buf;
  if (s.size() > 16) {
    std::snprintf(buf, sizeof buf, "%.8g", v);
    s = buf;
  }
  return s;
}

// A label without a SNOMED CT code in the bundle gets a private code (coding scheme designators
// starting with "99" are private by the standard) rather than an invented SNOMED one.
CodeSequenceMacro typeCode(const engine::LabelInfo& l) {
  if (!l.type.empty()) return CodeSequenceMacro(l.type.value.c_str(), l.type.scheme.c_str(), l.type.meaning.c_str());
  return CodeSequenceMacro(std::to_string(l.value).c_str(), "99SEGNODE", l.name.substr(0, 64).c_str());
}
CodeSequenceMacro categoryCode(const engine::LabelInfo& l) {
  if (!l.category.empty())
    return CodeSequenceMacro(l.category.value.c_str(), l.category.scheme.c_str(), l.category.meaning.c_str());
  return CodeSequenceMacro("91723000", "SCT", "Anatomical Structure");
}

}  // namespace

int writeSegmentation(const SeriesImage& src, const std::vector<uint16_t>& labels,
                      const std::vector<engine::LabelInfo>& table, const std::filesystem::path& referenceFile,
                      const SegOutput& out, const std::filesystem::path& file) {
  const auto& g = src.geometry;
  const size_t plane = size_t(g.size[0] * g.size[1]);
  if (labels.size() != plane * size_t(g.size[2])) throw Error(ErrorCode::Internal, "DICOM-SEG: label volume size differs from the series");

  IODGeneralEquipmentModule::EquipmentInfo equipment("segnode", "segnode", "1", out.modelName + " " + out.modelVersion);
  // ContentDescription (LO, 64 characters): the model, or the flag and what was measured.
  const std::string contentDescription = out.flag.empty() ? out.modelName + " " + out.modelVersion
                                                          : out.flag + ": " + out.note;
  ContentIdentificationMacro content("1", "SEGMENTATION", contentDescription.substr(0, 64).c_str(), "");
  DcmSegmentation* rawSeg = nullptr;
  check(DcmSegmentation::createBinarySegmentation(rawSeg, Uint16(g.size[1]), Uint16(g.size[0]), equipment, content),
        "create");
  std::unique_ptr<DcmSegmentation> seg(rawSeg);

  // Patient, study and frame of reference come from the source series.
  check(seg->importHierarchy(OFString(referenceFile.c_str()), OFTrue, OFTrue, OFTrue, OFFalse), "import patient/study");
  check(seg->getSeries().setSeriesInstanceUID(out.seriesInstanceUid.c_str()), "SeriesInstanceUID");
  check(seg->getSeries().setSeriesNumber(std::to_string(out.seriesNumber).c_str()), "SeriesNumber");
  std::string description = out.seriesDescription.empty() ? out.modelName + " " + out.modelVersion + " segmentation"
                                                          : out.seriesDescription;
  if (!out.flag.empty()) description = out.flag + " " + description;
  check(seg->getSeries().setSeriesDescription(description.substr(0, 64).c_str()), "SeriesDescription");
  check(seg->getSOPCommon().setSOPInstanceUID(out.sopInstanceUid.c_str()), "SOPInstanceUID");
  check(seg->getFrameOfReference().setFrameOfReferenceUID(src.frameOfReferenceUid.c_str()), "FrameOfReferenceUID");
  {
    char date[16], time[16];
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    std::strftime(date, sizeof date, "%Y%m%d", &tm);
    std::strftime(time, sizeof time, "%H%M%S", &tm);
    seg->getSeries().setSeriesDate(date);
    seg->getSeries().setSeriesTime(time);
    seg->getGeneralImage().setContentDate(date);
    seg->getGeneralImage().setContentTime(time);
  }

  // Shared functional groups: one orientation and pixel spacing for all frames.
  FGPlaneOrientationPatient* orient = FGPlaneOrientationPatient::createMinimal(
      ds(g.direction[0][0]).c_str(), ds(g.direction[1][0]).c_str(), ds(g.direction[2][0]).c_str(),
      ds(g.direction[0][1]).c_str(), ds(g.direction[1][1]).c_str(), ds(g.direction[2][1]).c_str());
  std::unique_ptr<FGPlaneOrientationPatient> orientHolder(orient);
  check(seg->addForAllFrames(*orient), "plane orientation");
  FGPixelMeasures measures;
  check(measures.setPixelSpacing((ds(g.spacing[1]) + "\\" + ds(g.spacing[0])).c_str()), "PixelSpacing");
  check(measures.setSliceThickness(ds(g.spacing[2]).c_str()), "SliceThickness");
  check(measures.setSpacingBetweenSlices(ds(g.spacing[2]).c_str()), "SpacingBetweenSlices");
  check(seg->addForAllFrames(measures), "pixel measures");

  // Dimensions: segment number, then position along the stack.
  const std::string orgUidText = newDicomUid(out.uidRoot);
  const char* orgUid = orgUidText.c_str();
  IODMultiframeDimensionModule& dims = seg->getDimensions();
  check(dims.addDimensionIndex(DCM_ReferencedSegmentNumber, orgUid, DCM_SegmentIdentificationSequence, "ReferencedSegmentNumber"),
        "dimension 1");
  check(dims.addDimensionIndex(DCM_ImagePositionPatient, orgUid, DCM_PlanePositionSequence, "ImagePositionPatient"),
        "dimension 2");

  int segments = 0;
  std::vector<Uint8> frame(plane);
  for (size_t t = 1; t < table.size(); ++t) {
    const engine::LabelInfo& l = table[t];
    // Which slices hold this label at all: empty frames are not written.
    std::vector<size_t> present;
    for (int64_t k = 0; k < g.size[2]; ++k) {
      const uint16_t* p = labels.data() + size_t(k) * plane;
      for (size_t i = 0; i < plane; ++i)
        if (p[i] == l.value) {
          present.push_back(size_t(k));
          break;
        }
    }
    if (present.empty()) continue;
    DcmSegment* segment = nullptr;
    check(DcmSegment::create(segment, l.name.substr(0, 64).c_str(), categoryCode(l), typeCode(l), DcmSegTypes::SAT_AUTOMATIC,
                             (out.modelName + " " + out.modelVersion).substr(0, 64).c_str()),
          "segment " + l.name);
    if (!l.typeModifier.empty())  // laterality: Segmented Property Type Modifier (CID 244)
      segment->getSegmentedPropertyTypeModifierCode().push_back(new CodeSequenceMacro(
          l.typeModifier.value.c_str(), l.typeModifier.scheme.c_str(), l.typeModifier.meaning.c_str()));
    double L, a, b;
    IODCIELabUtil::rgb2DicomLab(L, a, b, l.color[0] / 255.0, l.color[1] / 255.0, l.color[2] / 255.0);
    segment->setRecommendedDisplayCIELabValue(Uint16(L), Uint16(a), Uint16(b));
    if (t < out.segmentConfidence.size() && out.segmentConfidence[t] > 0) {  // what the radiologist can weigh
      char text[64];
      std::snprintf(text, sizeof text, "confidence %.2f (mean probability of its voxels)", out.segmentConfidence[t]);
      check(segment->setSegmentDescription(text), "SegmentDescription");
    }
    segment->getSegmentationAlgorithmIdentification();
    Uint16 number = 0;
    check(seg->addSegment(segment, number), "add segment " + l.name);
    ++segments;

    for (size_t k : present) {
      const uint16_t* p = labels.data() + k * plane;
      for (size_t i = 0; i < plane; ++i) frame[i] = p[i] == l.value ? 1 : 0;
      engine::Vec3 pos = g.indexToWorld({0, 0, double(k)});
      FGPlanePosPatient* position = FGPlanePosPatient::createMinimal(ds(pos[0]).c_str(), ds(pos[1]).c_str(), ds(pos[2]).c_str());
      std::unique_ptr<FGPlanePosPatient> positionHolder(position);
      FGFrameContent contentFg;
      contentFg.setDimensionIndexValues(number, 0);
      contentFg.setDimensionIndexValues(Uint32(k + 1), 1);
      OFVector<ImageSOPInstanceReferenceMacro> sources(1);
      check(sources[0].setReferencedSOPClassUID(src.sopClassUid.c_str()), "source SOP class");
      check(sources[0].setReferencedSOPInstanceUID(src.sourceSopInstanceUids[k].c_str()), "source SOP instance");
      std::unique_ptr<FGDerivationImage> derivation(DcmSegmentation::createDerivationImageFG(sources, "Automatic segmentation"));
      if (!derivation) throw Error(ErrorCode::BadInput, "DICOM-SEG: cannot create derivation image reference");
      OFVector<FGBase*> perFrame;
      perFrame.push_back(position);
      perFrame.push_back(&contentFg);
      perFrame.push_back(derivation.get());
      check(seg->addFrame(frame.data(), number, perFrame), "add frame");
    }
  }
  if (segments == 0) throw Error(ErrorCode::BadInput, "DICOM-SEG: no label present: nothing to encode");

  DcmFileFormat ff;
  check(seg->writeDataset(*ff.getDataset()), "write");
  // Common Instance Reference: the source series and every instance a frame was derived from.
  DcmItem* series = nullptr;
  check(ff.getDataset()->findOrCreateSequenceItem(DCM_ReferencedSeriesSequence, series, 0), "ReferencedSeriesSequence");
  check(series->putAndInsertString(DCM_SeriesInstanceUID, src.seriesUid.c_str()), "referenced series");
  std::vector<std::string> referenced;
  for (const auto& uid : src.sourceSopInstanceUids)
    if (std::find(referenced.begin(), referenced.end(), uid) == referenced.end()) referenced.push_back(uid);
  for (size_t i = 0; i < referenced.size(); ++i) {
    DcmItem* inst = nullptr;
    check(series->findOrCreateSequenceItem(DCM_ReferencedInstanceSequence, inst, long(i)), "ReferencedInstanceSequence");
    check(inst->putAndInsertString(DCM_ReferencedSOPClassUID, src.sopClassUid.c_str()), "referenced SOP class");
    check(inst->putAndInsertString(DCM_ReferencedSOPInstanceUID, referenced[i].c_str()), "referenced SOP instance");
  }
  std::filesystem::path tmp = file;
  tmp += ".tmp";
  check(ff.saveFile(tmp.c_str(), EXS_LittleEndianExplicit), "save " + file.string());
  std::filesystem::rename(tmp, file);
  return segments;
}

}  // namespace segnode::dicom
