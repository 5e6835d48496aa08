#include "SegDecode.h"

#include <dcmtk/dcmfg/fgplanpo.h>
#include <dcmtk/dcmfg/fgseg.h>
#include <dcmtk/dcmseg/segdoc.h>
#include <dcmtk/dcmseg/segment.h>
#include <dcmtk/dcmseg/segutils.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

namespace segnode::test {

std::vector<uint16_t> decodeSeg(const std::filesystem::path& file, const engine::Geometry& g,
                                const std::vector<engine::LabelInfo>& table) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(file.string() + ": " + what); };
  DcmSegmentation* raw = nullptr;
  if (DcmSegmentation::loadFile(file.c_str(), raw).bad()) fail("not a segmentation DCMTK reads");
  std::unique_ptr<DcmSegmentation> seg(raw);
  const size_t plane = size_t(g.size[0] * g.size[1]);
  std::vector<uint16_t> out(plane * size_t(g.size[2]), 0);
  for (size_t f = 0; f < seg->getNumberOfFrames(); ++f) {
    auto* pos = dynamic_cast<FGPlanePosPatient*>(seg->getFunctionalGroups().get(Uint32(f), DcmFGTypes::EFG_PLANEPOSPATIENT));
    auto* sfg = dynamic_cast<FGSegmentation*>(seg->getFunctionalGroups().get(Uint32(f), DcmFGTypes::EFG_SEGMENTATION));
    if (!pos || !sfg) fail("frame " + std::to_string(f) + " lacks its position or segment");
    Float64 x, y, z;
    pos->getImagePositionPatient(x, y, z);
    const long k = std::lround(g.worldToIndex({x, y, z})[2]);
    if (k < 0 || k >= g.size[2]) fail("frame " + std::to_string(f) + " lies outside the series");
    Uint16 number = 0;
    sfg->getReferencedSegmentNumber(number);
    DcmSegment* segment = seg->getSegment(number);
    if (!segment) fail("frame " + std::to_string(f) + " names no segment");
    OFString label;
    segment->getSegmentLabel(label);
    int value = -1;
    for (const auto& l : table)
      if (l.name == label.c_str()) value = l.value;
    if (value <= 0) fail(std::string("segment \"") + label.c_str() + "\" is no label of the table");
    std::unique_ptr<DcmIODTypes::Frame> bits(DcmSegUtils::unpackBinaryFrame(seg->getFrame(f), Uint16(g.size[1]), Uint16(g.size[0])));
    for (size_t i = 0; i < plane; ++i)
      if (bits->pixData[i]) out[size_t(k) * plane + i] = uint16_t(value);
  }
  return out;
}

}  // namespace segnode::test
