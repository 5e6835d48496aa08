#include "daemon/dicom/PixelDecoder.h"

#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <openjpeg.h>

#include <cstring>
#include <mutex>

#include "common/Error.h"

namespace segnode::dicom {
namespace {

void registerCodecs() {
  static std::once_flag once;
  std::call_once(once, [] {
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

struct MemoryStream {
  const uint8_t* data;
  size_t size, pos = 0;
};

OPJ_SIZE_T readFn(void* buffer, OPJ_SIZE_T n, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  if (s->pos >= s->size) return OPJ_SIZE_T(-1);
  size_t take = std::min(n, s->size - s->pos);
  std::memcpy(buffer, s->data + s->pos, take);
  s->pos += take;
  return take;
}
OPJ_OFF_T skipFn(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  s->pos = size_t(std::min<OPJ_OFF_T>(OPJ_OFF_T(s->size), OPJ_OFF_T(s->pos) + n));
  return n;
}
OPJ_BOOL seekFn(OPJ_OFF_T n, void* user) {
  auto* s = static_cast<MemoryStream*>(user);
  if (n < 0 || size_t(n) > s->size) return OPJ_FALSE;
  s->pos = size_t(n);
  return OPJ_TRUE;
}

// One JPEG 2000 code stream (or JP2 file) -> samples appended to `out`.
void decodeJ2k(const std::vector<uint8_t>& stream, const DecodedPixels& shape, std::vector<uint8_t>& out,
               const std::filesystem::path& file) {
  bool jp2 = stream.size() > 12 && stream[4] == 'j' && stream[5] == 'P';
  opj_codec_t* codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
  opj_dparameters_t params;
  opj_set_default_decoder_parameters(&params);
  opj_setup_decoder(codec, &params);
  MemoryStream ms{stream.data(), stream.size()};
  opj_stream_t* s = opj_stream_default_create(OPJ_TRUE);
  opj_stream_set_user_data(s, &ms, nullptr);
  opj_stream_set_user_data_length(s, stream.size());
  opj_stream_set_read_function(s, readFn);
  opj_stream_set_skip_function(s, skipFn);
  opj_stream_set_seek_function(s, seekFn);
  opj_image_t* image = nullptr;
  bool ok = opj_read_header(s, codec, &image) && opj_decode(codec, s, image) && opj_end_decompress(codec, s);
  opj_stream_destroy(s);
  opj_destroy_codec(codec);
  if (!ok || !image) {
    if (image) opj_image_destroy(image);
    throw Error(ErrorCode::BadInput, file.string() + ": JPEG 2000 stream does not decode");
  }
  size_t pixels = size_t(shape.rows) * size_t(shape.columns);
  if (int(image->numcomps) != shape.samplesPerPixel || image->comps[0].w * image->comps[0].h != pixels) {
    opj_image_destroy(image);
    throw Error(ErrorCode::BadInput, file.string() + ": JPEG 2000 image size differs from Rows x Columns");
  }
  const int bytes = shape.bitsAllocated / 8;
  for (size_t i = 0; i < pixels; ++i) {
    for (int c = 0; c < shape.samplesPerPixel; ++c) {
      uint32_t v = uint32_t(image->comps[c].data[i]);  // two's complement when signed
      for (int b = 0; b < bytes; ++b) out.push_back(uint8_t(v >> (8 * b)));
    }
  }
  opj_image_destroy(image);
}

// Every buffer size below follows from these attributes, so they are checked before any of it:
// grey-scale samples of 1, 2 or 4 bytes in a non-empty image (BitsAllocated 24 once read past the
// buffer and took the daemon down).
void checkPixelModule(const DecodedPixels& px, const std::filesystem::path& file) {
  auto refuse = [&](ErrorCode code, const std::string& why) { throw Error(code, file.string() + ": " + why); };
  if (px.bitsAllocated != 8 && px.bitsAllocated != 16 && px.bitsAllocated != 32)
    refuse(ErrorCode::Unsupported, "BitsAllocated " + std::to_string(px.bitsAllocated) + " (8, 16 or 32 are read)");
  if (px.samplesPerPixel != 1) refuse(ErrorCode::Unsupported, "SamplesPerPixel " + std::to_string(px.samplesPerPixel) + ": not a grey-scale image");
  if (px.rows == 0 || px.columns == 0) refuse(ErrorCode::BadInput, "Rows or Columns is 0 or missing");
}

}  // namespace

DecodedPixels decodePixels(const std::filesystem::path& file) {
  registerCodecs();
  DcmFileFormat ff;
  if (ff.loadFile(file.c_str()).bad()) throw Error(ErrorCode::BadInput, file.string() + ": not readable as DICOM");
  DcmDataset& ds = *ff.getDataset();
  DecodedPixels px;
  Uint16 u16 = 0;
  if (ds.findAndGetUint16(DCM_Rows, u16).good()) px.rows = u16;
  if (ds.findAndGetUint16(DCM_Columns, u16).good()) px.columns = u16;
  if (ds.findAndGetUint16(DCM_SamplesPerPixel, u16).good()) px.samplesPerPixel = u16;
  if (ds.findAndGetUint16(DCM_BitsAllocated, u16).good()) px.bitsAllocated = u16;
  px.bitsStored = px.bitsAllocated;
  if (ds.findAndGetUint16(DCM_BitsStored, u16).good() && u16 > 0 && u16 <= px.bitsAllocated) px.bitsStored = u16;
  if (ds.findAndGetUint16(DCM_PixelRepresentation, u16).good()) px.isSigned = u16 == 1;
  Sint32 frames = 1;
  if (ds.findAndGetSint32(DCM_NumberOfFrames, frames).good() && frames > 0) px.frames = frames;
  checkPixelModule(px, file);

  E_TransferSyntax xfer = ds.getOriginalXfer();
  if (xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000) {
    DcmElement* e = nullptr;
    if (ds.findAndGetElement(DCM_PixelData, e).bad()) throw Error(ErrorCode::BadInput, file.string() + ": no Pixel Data");
    DcmPixelSequence* seq = nullptr;
    if (static_cast<DcmPixelData*>(e)->getEncapsulatedRepresentation(xfer, nullptr, seq).bad() || !seq)
      throw Error(ErrorCode::BadInput, file.string() + ": Pixel Data is not encapsulated");
    // Item 0 is the offset table; with one frame every fragment belongs to it, otherwise one
    // fragment per frame (the common encoding).
    unsigned long items = seq->card();
    std::vector<std::vector<uint8_t>> streams;
    for (unsigned long i = 1; i < items; ++i) {
      DcmPixelItem* item = nullptr;
      seq->getItem(item, i);
      Uint8* bytes = nullptr;
      item->getUint8Array(bytes);
      if (px.frames == 1 && !streams.empty()) streams[0].insert(streams[0].end(), bytes, bytes + item->getLength());
      else streams.emplace_back(bytes, bytes + item->getLength());
    }
    if (int(streams.size()) != px.frames)
      throw Error(ErrorCode::Unsupported, file.string() + ": JPEG 2000 fragments do not map one to one onto frames");
    for (const auto& s : streams) decodeJ2k(s, px, px.data, file);
    return px;
  }
  if (ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr).bad())
    throw Error(ErrorCode::Unsupported, file.string() + ": cannot decompress transfer syntax " + DcmXfer(xfer).getXferName());
  DcmElement* e = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, e).bad()) throw Error(ErrorCode::BadInput, file.string() + ": no Pixel Data");
  Uint8* bytes = nullptr;
  e->getUint8Array(bytes);
  size_t expected = size_t(px.frames) * px.rows * px.columns * px.samplesPerPixel * (px.bitsAllocated / 8);
  if (!bytes || e->getLength() < expected) throw Error(ErrorCode::BadInput, file.string() + ": Pixel Data is shorter than the image");
  px.data.assign(bytes, bytes + expected);
  return px;
}

}  // namespace segnode::dicom
