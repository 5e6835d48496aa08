#pragma once
// One error type for the whole project: a code that says what kind of failure it is, and a
// message that says what, where and how to fix it. Codes become exit codes (or DIMSE/HTTP
// statuses) only at the edge of a program.
#include <stdexcept>
#include <string>

namespace segnode {

enum class ErrorCode {
  InvalidArgument,  // the caller asked for something that makes no sense (bad option value)
  BadInput,         // an input file exists but is not what it claims (corrupt NIfTI, wrong dims)
  NotFound,         // a file, model or version that does not exist
  BadBundle,        // a model bundle that is incomplete, corrupt or inconsistent
  BadConfig,        // a configuration file with a wrong key or value
  Unsupported,      // valid input we deliberately do not handle (4D, NIfTI-2, ...)
  Io,               // the OS refused a read or write
  Internal,         // a bug: an invariant did not hold
};

const char* toString(ErrorCode code);

// sysexits.h meanings, so shells and systemd see a code that means something.
int exitCodeFor(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace segnode
