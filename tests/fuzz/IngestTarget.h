#pragma once
// What the node does with the bytes of one received data set, from the header to a volume:
// dicom::readInstanceHeader (admission) and then dicom::loadSeries on it as a one-file series.
// Shared by the libFuzzer harness (fuzz_ingest.cpp, clang + ASan/UBSan, tests/fuzz/fuzz.sh) and the
// replay test (node_tests), which runs every file of tests/fuzz/regressions/ on every CI run.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace segnode::fuzz {

// Writes `data` to `scratch` and takes it through admission and loading. Returns "" when the
// volume loaded, else the refusal (a segnode::Error's message). Anything else (another exception
// type, a crash, a sanitizer report) is a defect and escapes.
std::string ingestBytes(const uint8_t* data, size_t size, const std::filesystem::path& scratch);

}  // namespace segnode::fuzz
