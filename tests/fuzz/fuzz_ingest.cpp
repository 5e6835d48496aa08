// libFuzzer entry point (tests/fuzz/fuzz.sh builds it with clang, -fsanitize=fuzzer,address,undefined).
#include <unistd.h>

#include <dcmtk/oflog/oflog.h>

#include <string>

#include "IngestTarget.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);  // DCMTK's warnings on broken input are expected
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // One scratch file per process (libFuzzer's -fork/-jobs run several), in tmpfs when there is one.
  static const std::string scratch = "/dev/shm/segnode-fuzz-" + std::to_string(::getpid()) + ".dcm";
  segnode::fuzz::ingestBytes(data, size, scratch);
  return 0;
}
