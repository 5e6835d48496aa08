#include "daemon/dicom/SeriesLoader.h"

#include <dcmtk/dcmdata/dctk.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common/Error.h"
#include "daemon/dicom/PixelDecoder.h"

namespace segnode::dicom {
namespace {

using engine::Vec3;

constexpr double kOrientationTolerance = 1e-4;  // direction cosines
constexpr double kSpacingTolerance = 0.01;      // relative deviation of slice gaps

// One 2D slice: a single-frame instance or one frame of a multi-frame one.
struct Slice {
  std::string sopUid;
  int frame = 1;  // 1-based
  Vec3 position{}, row{}, col{};
  double rowSpacing = 0, colSpacing = 0;  // PixelSpacing[0] (between rows), [1] (between columns)
  double slope = 1, intercept = 0;
  int rows = 0, columns = 0;
  const DecodedPixels* pixels = nullptr;
  double along = 0;  // position projected on the slice normal
};

[[noreturn]] void refuse(const std::string& why) { throw Error(ErrorCode::Unsupported, "series refused: " + why); }

bool readDoubles(DcmItem& item, const DcmTagKey& tag, size_t n, double* out) {
  for (size_t i = 0; i < n; ++i) {
    Float64 v;
    if (item.findAndGetFloat64(tag, v, unsigned(i)).bad()) return false;
    out[i] = v;
  }
  return true;
}

// Looks a tag up in the per-frame item first, then the shared functional groups, then the
// top level (enhanced objects keep geometry in functional group macros).
bool findInGroups(DcmItem* perFrame, DcmItem* shared, DcmItem& top, const DcmTagKey& macro, const DcmTagKey& tag,
                  size_t n, double* out) {
  for (DcmItem* groups : {perFrame, shared}) {
    DcmItem* m = nullptr;
    if (groups && groups->findAndGetSequenceItem(macro, m, 0).good() && m && readDoubles(*m, tag, n, out)) return true;
  }
  return readDoubles(top, tag, n, out);
}

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

SeriesImage loadSeries(const std::vector<std::filesystem::path>& files) {
  if (files.empty()) refuse("no instances");
  SeriesImage out;
  std::vector<DecodedPixels> decoded;
  decoded.reserve(files.size());
  std::vector<Slice> slices;
  for (const auto& file : files) {
    DcmFileFormat ff;
    if (ff.loadFile(file.c_str()).bad()) throw Error(ErrorCode::BadInput, file.string() + ": not readable as DICOM");
    DcmDataset& ds = *ff.getDataset();
    OFString imageType, sop, v;
    ds.findAndGetOFStringArray(DCM_ImageType, imageType);
    std::string type = upper(imageType.c_str());
    if (type.find("LOCALIZER") != std::string::npos) refuse(file.filename().string() + " is a LOCALIZER image");
    if (type.find("MOSAIC") != std::string::npos) refuse(file.filename().string() + " is a Siemens MOSAIC (unsupported)");
    ds.findAndGetOFString(DCM_SOPInstanceUID, sop);
    if (out.seriesUid.empty()) {
      ds.findAndGetOFString(DCM_SeriesInstanceUID, v), out.seriesUid = v.c_str();
      ds.findAndGetOFString(DCM_StudyInstanceUID, v), out.studyUid = v.c_str();
      ds.findAndGetOFString(DCM_FrameOfReferenceUID, v), out.frameOfReferenceUid = v.c_str();
      ds.findAndGetOFString(DCM_Modality, v), out.modality = v.c_str();
      ds.findAndGetOFString(DCM_SOPClassUID, v), out.sopClassUid = v.c_str();
    }
    decoded.push_back(decodePixels(file));
    const DecodedPixels& px = decoded.back();
    if (px.samplesPerPixel != 1) refuse(file.filename().string() + " is not a grey-scale image");

    DcmItem* shared = nullptr;
    ds.findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0);
    for (int f = 0; f < px.frames; ++f) {
      DcmItem* perFrame = nullptr;
      ds.findAndGetSequenceItem(DCM_PerFrameFunctionalGroupsSequence, perFrame, f);
      Slice s;
      s.sopUid = sop.c_str();
      s.frame = f + 1;
      s.rows = px.rows;
      s.columns = px.columns;
      s.pixels = &px;
      double iop[6], ipp[3], ps[2];
      if (!findInGroups(perFrame, shared, ds, DCM_PlaneOrientationSequence, DCM_ImageOrientationPatient, 6, iop))
        refuse(file.filename().string() + " has no ImageOrientationPatient");
      if (!findInGroups(perFrame, shared, ds, DCM_PlanePositionSequence, DCM_ImagePositionPatient, 3, ipp))
        refuse(file.filename().string() + " has no ImagePositionPatient");
      if (!findInGroups(perFrame, shared, ds, DCM_PixelMeasuresSequence, DCM_PixelSpacing, 2, ps))
        refuse(file.filename().string() + " has no PixelSpacing");
      double slope = 1, intercept = 0;
      findInGroups(perFrame, shared, ds, DCM_PixelValueTransformationSequence, DCM_RescaleSlope, 1, &slope);
      findInGroups(perFrame, shared, ds, DCM_PixelValueTransformationSequence, DCM_RescaleIntercept, 1, &intercept);
      s.row = {iop[0], iop[1], iop[2]};
      s.col = {iop[3], iop[4], iop[5]};
      s.position = {ipp[0], ipp[1], ipp[2]};
      s.rowSpacing = ps[0];
      s.colSpacing = ps[1];
      s.slope = slope == 0 ? 1 : slope;
      s.intercept = intercept;
      slices.push_back(s);
    }
  }

  // One orientation, one size, one pixel spacing.
  const Slice& first = slices.front();
  for (const auto& s : slices) {
    if (s.rows != first.rows || s.columns != first.columns)
      refuse("mixed image sizes (" + std::to_string(first.columns) + "x" + std::to_string(first.rows) + " and " +
             std::to_string(s.columns) + "x" + std::to_string(s.rows) + ")");
    for (int a = 0; a < 3; ++a)
      if (std::fabs(s.row[a] - first.row[a]) > kOrientationTolerance || std::fabs(s.col[a] - first.col[a]) > kOrientationTolerance)
        refuse("more than one slice orientation");
    if (std::fabs(s.rowSpacing - first.rowSpacing) > 1e-4 || std::fabs(s.colSpacing - first.colSpacing) > 1e-4)
      refuse("mixed pixel spacings");
  }
  Vec3 normal = cross(first.row, first.col);
  for (auto& s : slices) s.along = dot(s.position, normal);
  std::stable_sort(slices.begin(), slices.end(), [](const Slice& a, const Slice& b) { return a.along < b.along; });

  // Several images at one position: time points, echoes or repeats (4D), not one volume.
  std::map<long long, int> perPosition;
  for (const auto& s : slices) ++perPosition[std::llround(s.along * 1000)];
  if (perPosition.size() != slices.size())
    refuse(std::to_string(slices.size()) + " images at " + std::to_string(perPosition.size()) +
           " slice positions (4D, multi-echo or repeated series)");

  // One image has no slice spacing (SliceThickness is not the distance between slices): refused
  // rather than given a guessed one.
  if (slices.size() < 2) refuse("a single image: a volume needs at least 2 slices to know their spacing");
  const Vec3 span{slices.back().position[0] - first.position[0], slices.back().position[1] - first.position[1],
                  slices.back().position[2] - first.position[2]};
  const double length = std::sqrt(dot(span, span));
  const double spacing = length / double(slices.size() - 1);
  const Vec3 kdir{span[0] / length, span[1] / length, span[2] / length};
  // Slices must stack along the normal: otherwise the gantry was tilted (or the grid sheared).
  if (std::fabs(dot(kdir, normal)) < 1 - 1e-4)
    refuse("slices do not stack along their normal (gantry tilt of " +
           std::to_string(std::acos(std::min(1.0, std::fabs(dot(kdir, normal)))) * 180 / M_PI) + " degrees)");
  for (size_t k = 1; k < slices.size(); ++k) {
    double gap = slices[k].along - slices[k - 1].along;
    if (std::fabs(gap - spacing) > kSpacingTolerance * spacing)
      refuse("non-uniform slice spacing (gap of " + std::to_string(gap) + " mm where " + std::to_string(spacing) +
             " mm is the mean): missing slices?");
  }

  const Slice& s0 = slices.front();
  engine::Geometry& g = out.geometry;
  g.size = {s0.columns, s0.rows, int64_t(slices.size())};
  g.spacing = {s0.colSpacing, s0.rowSpacing, spacing};
  g.origin = s0.position;
  for (int r = 0; r < 3; ++r) {
    g.direction[r][0] = s0.row[r];
    g.direction[r][1] = s0.col[r];
    g.direction[r][2] = kdir[r];
  }
  const size_t plane = size_t(s0.rows) * size_t(s0.columns);
  out.voxels.resize(plane * slices.size());
  for (size_t k = 0; k < slices.size(); ++k) {
    const Slice& s = slices[k];
    const DecodedPixels& px = *s.pixels;
    const int bytes = px.bitsAllocated / 8;
    // Only BitsStored bits are the value: mask the rest, and sign-extend from the stored width.
    const uint32_t mask = px.bitsStored >= 32 ? 0xFFFFFFFFu : ((1u << px.bitsStored) - 1);
    const uint32_t signBit = 1u << (px.bitsStored - 1);
    auto value = [&](uint32_t u) {
      u &= mask;
      if (px.isSigned && (u & signBit)) return double(int64_t(u) - (int64_t(1) << px.bitsStored));
      return double(u);
    };
    const uint8_t* src = px.data.data() + size_t(s.frame - 1) * plane * size_t(bytes);
    float* dst = out.voxels.data() + k * plane;
    for (size_t i = 0; i < plane; ++i) {
      uint32_t u;
      if (bytes == 1) u = src[i];
      else if (bytes == 2) u = uint32_t(src[2 * i] | (src[2 * i + 1] << 8));
      else u = uint32_t(src[4 * i]) | (uint32_t(src[4 * i + 1]) << 8) | (uint32_t(src[4 * i + 2]) << 16) | (uint32_t(src[4 * i + 3]) << 24);
      double raw = value(u);
      dst[i] = float(raw * s.slope + s.intercept);
    }
    out.sourceSopInstanceUids.push_back(s.sopUid);
    out.sourceFrameNumbers.push_back(s.frame);
  }
  return out;
}

}  // namespace segnode::dicom
