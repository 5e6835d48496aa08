#include "common/Version.h"

namespace segnode {
const char* version() { return SEGNODE_VERSION; }
}  // namespace segnode
