#include "common/Error.h"

namespace segnode {

const char* toString(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "invalid argument";
    case ErrorCode::BadInput: return "bad input";
    case ErrorCode::NotFound: return "not found";
    case ErrorCode::BadBundle: return "bad model bundle";
    case ErrorCode::BadConfig: return "bad configuration";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::Io: return "I/O error";
    case ErrorCode::Internal: return "internal error";
  }
  return "error";
}

int exitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return 64;  // EX_USAGE
    case ErrorCode::BadInput: return 65;         // EX_DATAERR
    case ErrorCode::NotFound: return 66;         // EX_NOINPUT
    case ErrorCode::BadBundle: return 65;        // EX_DATAERR
    case ErrorCode::Unsupported: return 65;      // EX_DATAERR
    case ErrorCode::BadConfig: return 78;        // EX_CONFIG
    case ErrorCode::Io: return 74;               // EX_IOERR
    case ErrorCode::Internal: return 70;         // EX_SOFTWARE
  }
  return 1;
}

}  // namespace segnode
