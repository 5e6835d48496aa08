#pragma once
// Process-wide settings of DCMTK, made once at start-up by each program that speaks DICOM.
namespace segnode::dicom {

// Nagle's algorithm off on every DICOM socket (DCMTK reads TCP_NODELAY from the environment;
// with Nagle on, small PDUs wait about 40 ms: 170 files took 8.7 s instead of 0.35 s), and DCMTK's
// own logger at warnings (verbose: info), so that our log categories tell what happened.
void configureToolkit(bool verbose);

}  // namespace segnode::dicom
