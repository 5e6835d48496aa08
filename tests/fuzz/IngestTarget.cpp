#include "IngestTarget.h"

#include <fstream>

#include "common/Error.h"
#include "daemon/dicom/InstanceReader.h"
#include "daemon/dicom/SeriesLoader.h"

namespace segnode::fuzz {

std::string ingestBytes(const uint8_t* data, size_t size, const std::filesystem::path& scratch) {
  {
    std::ofstream out(scratch, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  }
  try {
    dicom::readInstanceHeader(scratch);  // what the SCP does before it answers
    dicom::loadSeries({scratch});        // what a worker does with a series
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

}  // namespace segnode::fuzz
