#include "engine/Nifti.h"

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <vector>

#include <torch/torch.h>

#include "common/Error.h"

namespace segnode::engine {
namespace {

constexpr int kHeaderSize = 348;
constexpr int kDataOffset = 352;  // header + 4-byte extension flag

// NIfTI datatype codes.
enum : int16_t { kUInt8 = 2, kInt16 = 4, kInt32 = 8, kFloat32 = 16, kFloat64 = 64, kInt8 = 256, kUInt16 = 512 };

[[noreturn]] void bad(const std::filesystem::path& p, const std::string& what,
                      ErrorCode code = ErrorCode::BadInput) {
  throw Error(code, p.string() + ": " + what);
}

std::vector<uint8_t> readAll(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) bad(path, "no such file", ErrorCode::NotFound);
  // gzread reads plain files unchanged, so one path handles .nii and .nii.gz alike.
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) bad(path, "cannot open for reading", ErrorCode::Io);
  gzbuffer(f, 1 << 17);
  std::vector<uint8_t> out;
  std::vector<uint8_t> chunk(1 << 20);
  while (true) {
    int n = gzread(f, chunk.data(), unsigned(chunk.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      bad(path, "gzip stream is corrupt or truncated (" + msg + ")");
    }
    if (n == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + n);
  }
  gzclose(f);
  return out;
}

template <typename T>
T get(const std::vector<uint8_t>& b, size_t off, bool swap) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  if (swap) {
    uint8_t* p = reinterpret_cast<uint8_t*>(&v);
    std::reverse(p, p + sizeof(T));
  }
  return v;
}

template <typename T>
void put(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}

struct TypeInfo {
  torch::ScalarType storage;  // how the bytes are laid out
  int bytes;
};

TypeInfo typeInfo(int16_t code, const std::filesystem::path& p) {
  switch (code) {
    case kUInt8: return {torch::kByte, 1};
    case kInt8: return {torch::kChar, 1};
    case kInt16: return {torch::kShort, 2};
    case kUInt16: return {torch::kShort, 2};  // reinterpreted below
    case kInt32: return {torch::kInt, 4};
    case kFloat32: return {torch::kFloat, 4};
    case kFloat64: return {torch::kDouble, 8};
    default:
      bad(p, "voxel datatype " + std::to_string(code) +
                 " is not supported (use uint8, int8, int16, uint16, int32, float32 or float64)",
          ErrorCode::Unsupported);
  }
}

Affine qformAffine(const std::vector<uint8_t>& h, bool sw, const float pixdim[8]) {
  double b = get<float>(h, 256, sw), c = get<float>(h, 260, sw), d = get<float>(h, 264, sw);
  double a = 1.0 - (b * b + c * c + d * d);
  a = a < 1e-7 ? 0.0 : std::sqrt(a);
  Mat3 r{{{a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)},
          {2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)},
          {2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b}}};
  double qfac = pixdim[0] < 0 ? -1.0 : 1.0;
  Affine aff{};
  for (int row = 0; row < 3; ++row) {
    aff[row][0] = r[row][0] * pixdim[1];
    aff[row][1] = r[row][1] * pixdim[2];
    aff[row][2] = r[row][2] * pixdim[3] * qfac;
  }
  aff[0][3] = get<float>(h, 268, sw);
  aff[1][3] = get<float>(h, 272, sw);
  aff[2][3] = get<float>(h, 276, sw);
  aff[3] = {0, 0, 0, 1};
  return aff;
}

// Rotation matrix (may include one reflection) -> NIfTI quaternion (b, c, d) and qfac.
void quaternionOf(Mat3 r, double& qb, double& qc, double& qd, double& qfac) {
  double det = r[0][0] * (r[1][1] * r[2][2] - r[1][2] * r[2][1]) -
               r[0][1] * (r[1][0] * r[2][2] - r[1][2] * r[2][0]) +
               r[0][2] * (r[1][0] * r[2][1] - r[1][1] * r[2][0]);
  qfac = det < 0 ? -1.0 : 1.0;
  if (det < 0)
    for (int row = 0; row < 3; ++row) r[row][2] = -r[row][2];
  double w, x, y, z, trace = r[0][0] + r[1][1] + r[2][2];
  if (trace > 0) {
    double s = 0.5 / std::sqrt(trace + 1.0);
    w = 0.25 / s;
    x = (r[2][1] - r[1][2]) * s;
    y = (r[0][2] - r[2][0]) * s;
    z = (r[1][0] - r[0][1]) * s;
  } else if (r[0][0] > r[1][1] && r[0][0] > r[2][2]) {
    double s = 2.0 * std::sqrt(1.0 + r[0][0] - r[1][1] - r[2][2]);
    w = (r[2][1] - r[1][2]) / s;
    x = 0.25 * s;
    y = (r[0][1] + r[1][0]) / s;
    z = (r[0][2] + r[2][0]) / s;
  } else if (r[1][1] > r[2][2]) {
    double s = 2.0 * std::sqrt(1.0 + r[1][1] - r[0][0] - r[2][2]);
    w = (r[0][2] - r[2][0]) / s;
    x = (r[0][1] + r[1][0]) / s;
    y = 0.25 * s;
    z = (r[1][2] + r[2][1]) / s;
  } else {
    double s = 2.0 * std::sqrt(1.0 + r[2][2] - r[0][0] - r[1][1]);
    w = (r[1][0] - r[0][1]) / s;
    x = (r[0][2] + r[2][0]) / s;
    y = (r[1][2] + r[2][1]) / s;
    z = 0.25 * s;
  }
  if (w < 0) {
    x = -x;
    y = -y;
    z = -z;
  }
  qb = x;
  qc = y;
  qd = z;
}

}  // namespace

Volume readNifti(const std::filesystem::path& path, const NiftiReadOptions& options) {
  std::vector<uint8_t> bytes = readAll(path);
  if (bytes.size() < size_t(kHeaderSize)) bad(path, "file is shorter than a NIfTI-1 header (348 bytes)");
  int32_t sizeofHdr;
  std::memcpy(&sizeofHdr, bytes.data(), 4);
  bool sw = false;
  if (sizeofHdr != kHeaderSize) {
    int32_t swapped = get<int32_t>(bytes, 0, true);
    if (swapped == kHeaderSize) sw = true;
    else if (sizeofHdr == 540 || swapped == 540)
      bad(path, "NIfTI-2 files are not supported; convert to NIfTI-1", ErrorCode::Unsupported);
    else bad(path, "not a NIfTI-1 file (sizeof_hdr is " + std::to_string(sizeofHdr) + ", expected 348)");
  }
  const char* magic = reinterpret_cast<const char*>(bytes.data() + 344);
  if (std::strncmp(magic, "ni1", 4) == 0)
    bad(path, "two-file NIfTI (.hdr/.img) is not supported; use a single .nii/.nii.gz", ErrorCode::Unsupported);
  if (std::strncmp(magic, "n+1", 4) != 0) bad(path, "missing NIfTI-1 magic 'n+1'");

  int16_t dim[8];
  for (int i = 0; i < 8; ++i) dim[i] = get<int16_t>(bytes, 40 + 2 * i, sw);
  if (dim[0] < 1 || dim[0] > 7) bad(path, "dim[0] = " + std::to_string(dim[0]) + " is outside 1..7");
  Size3 size{1, 1, 1};
  for (int i = 1; i <= dim[0]; ++i) {
    if (dim[i] < 1) bad(path, "dim[" + std::to_string(i) + "] = " + std::to_string(dim[i]) + " must be >= 1");
    if (i <= 3) size[size_t(i - 1)] = dim[i];
    else if (dim[i] > 1)
      bad(path, "has " + std::to_string(dim[0]) + " dimensions (dim[" + std::to_string(i) + "] = " +
                    std::to_string(dim[i]) + "); only 3D volumes are supported",
          ErrorCode::Unsupported);
  }
  int16_t datatype = get<int16_t>(bytes, 70, sw);
  TypeInfo ti = typeInfo(datatype, path);
  float pixdim[8];
  for (int i = 0; i < 8; ++i) pixdim[i] = get<float>(bytes, 76 + 4 * i, sw);
  double voxOffset = get<float>(bytes, 108, sw);
  if (voxOffset < kHeaderSize) voxOffset = kDataOffset;
  size_t count = size_t(size[0] * size[1] * size[2]);
  size_t need = size_t(voxOffset) + count * size_t(ti.bytes);
  if (bytes.size() < need)
    bad(path, "truncated: the header needs " + std::to_string(need) + " bytes, the file has " +
                  std::to_string(bytes.size()));

  Affine ras{};
  int16_t qformCode = get<int16_t>(bytes, 252, sw), sformCode = get<int16_t>(bytes, 254, sw);
  if (sformCode > 0) {
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 4; ++c) ras[r][c] = get<float>(bytes, 280 + 16 * r + 4 * c, sw);
    ras[3] = {0, 0, 0, 1};
  } else if (qformCode > 0) {
    ras = qformAffine(bytes, sw, pixdim);
  } else {
    for (int r = 0; r < 3; ++r) ras[r][r] = pixdim[r + 1] > 0 ? pixdim[r + 1] : 1.0;
    ras[3] = {0, 0, 0, 1};
  }
  Volume v;
  try {
    v.geometry = Geometry::fromAffine(flipXY(ras), size);
  } catch (const Error& e) {
    bad(path, std::string("unusable orientation: ") + e.what());
  }

  torch::Tensor t = torch::empty({size[2], size[1], size[0]}, torch::TensorOptions().dtype(ti.storage));
  std::memcpy(t.data_ptr(), bytes.data() + size_t(voxOffset), count * size_t(ti.bytes));
  if (sw && ti.bytes > 1) {
    auto* p = static_cast<uint8_t*>(t.data_ptr());
    for (size_t i = 0; i < count; ++i) std::reverse(p + i * size_t(ti.bytes), p + (i + 1) * size_t(ti.bytes));
  }
  if (datatype == kUInt16) t = t.to(torch::kInt).bitwise_and(0xFFFF);  // no uint16 in LibTorch 1.13

  float slope = get<float>(bytes, 112, sw), inter = get<float>(bytes, 116, sw);
  if (options.applyScaling && std::isfinite(slope) && slope != 0 && !(slope == 1 && inter == 0))
    t = t.to(torch::kFloat).mul_(slope).add_(inter);
  v.data = t;
  return v;
}

void writeNifti(const std::filesystem::path& path, const Volume& volume) {
  volume.checkConsistent();
  int16_t datatype;
  int16_t bitpix;
  switch (volume.data.scalar_type()) {
    case torch::kByte: datatype = kUInt8; bitpix = 8; break;
    case torch::kShort: datatype = kInt16; bitpix = 16; break;
    case torch::kInt: datatype = kInt32; bitpix = 32; break;
    case torch::kFloat: datatype = kFloat32; bitpix = 32; break;
    case torch::kDouble: datatype = kFloat64; bitpix = 64; break;
    default:
      throw Error(ErrorCode::Unsupported, path.string() + ": cannot write voxel type " +
                                              std::string(c10::toString(volume.data.scalar_type())));
  }
  const Geometry& g = volume.geometry;
  std::vector<uint8_t> h(kDataOffset, 0);
  put<int32_t>(h, 0, kHeaderSize);
  put<int16_t>(h, 40, 3);
  for (int i = 0; i < 3; ++i) put<int16_t>(h, 42 + 2 * i, int16_t(g.size[size_t(i)]));
  for (int i = 3; i < 7; ++i) put<int16_t>(h, 42 + 2 * i, 1);
  put<int16_t>(h, 70, datatype);
  put<int16_t>(h, 72, bitpix);
  Affine ras = flipXY(g.affine());
  Mat3 rot{};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) rot[r][c] = ras[r][c] / g.spacing[size_t(c)];
  double qb, qc, qd, qfac;
  quaternionOf(rot, qb, qc, qd, qfac);
  put<float>(h, 76, float(qfac));
  for (int i = 0; i < 3; ++i) put<float>(h, 80 + 4 * i, float(g.spacing[size_t(i)]));
  for (int i = 3; i < 7; ++i) put<float>(h, 80 + 4 * i, 1.0f);
  put<float>(h, 108, float(kDataOffset));
  put<float>(h, 112, 0.0f);  // scl_slope 0: no scaling
  h[123] = 10;               // xyzt_units: mm + s
  std::strncpy(reinterpret_cast<char*>(h.data() + 148), "segnode", 80);
  put<int16_t>(h, 252, 1);
  put<int16_t>(h, 254, 1);
  put<float>(h, 256, float(qb));
  put<float>(h, 260, float(qc));
  put<float>(h, 264, float(qd));
  for (int i = 0; i < 3; ++i) put<float>(h, 268 + 4 * i, float(ras[size_t(i)][3]));
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c) put<float>(h, 280 + 16 * r + 4 * c, float(ras[size_t(r)][size_t(c)]));
  std::memcpy(h.data() + 344, "n+1\0", 4);

  torch::Tensor data = volume.data.contiguous();
  bool gz = path.extension() == ".gz";
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  // Written to a temporary name and renamed, so a reader never sees half a file.
  gzFile f = gzopen(tmp.c_str(), gz ? "wb1" : "wbT");
  if (!f) throw Error(ErrorCode::Io, path.string() + ": cannot open for writing");
  auto write = [&](const void* p, size_t n) {
    const auto* c = static_cast<const char*>(p);
    while (n > 0) {
      unsigned take = unsigned(std::min<size_t>(n, 1u << 30));
      if (gzwrite(f, c, take) != int(take)) {
        gzclose(f);
        std::filesystem::remove(tmp);
        throw Error(ErrorCode::Io, path.string() + ": write failed (disk full?)");
      }
      c += take;
      n -= take;
    }
  };
  write(h.data(), h.size());
  write(data.data_ptr(), size_t(data.numel()) * data.element_size());
  if (gzclose(f) != Z_OK) {
    std::filesystem::remove(tmp);
    throw Error(ErrorCode::Io, path.string() + ": closing failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace segnode::engine
