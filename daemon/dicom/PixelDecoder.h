#pragma once
// Decompressed pixel data of a stored instance, whatever transfer syntax it arrived in: DCMTK's
// codecs for RLE, JPEG and JPEG-LS; OpenJPEG for JPEG 2000, which DCMTK 3.6.7 cannot decode.
#include <cstdint>
#include <filesystem>
#include <vector>

namespace segnode::dicom {

struct DecodedPixels {
  int rows = 0, columns = 0, frames = 1, samplesPerPixel = 1, bitsAllocated = 16;
  int bitsStored = 16;  // the bits above (e.g. overlay bits in old files) are not part of the value
  bool isSigned = false;
  std::vector<uint8_t> data;  // frames x rows x columns x samples, little endian, bitsAllocated each
};

// Throws segnode::Error(BadInput / Unsupported) naming the file.
DecodedPixels decodePixels(const std::filesystem::path& file);

}  // namespace segnode::dicom
