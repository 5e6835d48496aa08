// segnode-distill evaluate and export: see Evaluate.h.
#include "common/Error.h"
#include "training/Commands.h"

namespace segnode::distill {
int runEvaluate(const ArgList&) { throw Error(ErrorCode::Unsupported, "evaluate: not built yet"); }
int runExport(const ArgList&) { throw Error(ErrorCode::Unsupported, "export: not built yet"); }
}  // namespace segnode::distill
