#pragma once
// The node's version (CMake's PROJECT_VERSION; the Debian package's too), for --version, the
// build_info metric and the SEG's software versions.
namespace segnode {
const char* version();
}
