#include "cli_base.h"

#include <iostream>

namespace modelpress::cli {

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return kExitOk;
    case StatusCode::kInvalidArgument: return kExitUsage;
    case StatusCode::kNotFound:
    case StatusCode::kIoError: return kExitInput;
    case StatusCode::kCorrupt:
    case StatusCode::kPermissionDenied: return kExitBadModel;
    case StatusCode::kUnsupported: return kExitUnsupported;
    case StatusCode::kInternal: return kExitInternal;
  }
  return kExitInternal;
}

int Fail(const Status& status) {
  std::cerr << "modelpress: error: " << status.message() << "\n";
  return ExitCodeFor(status);
}

Status CheckNotSameFile(const std::filesystem::path& input, const std::filesystem::path& output) {
  std::error_code ec;
  if (std::filesystem::equivalent(input, output, ec)) {
    return InvalidArgument(output.string() + ": output is the input file; modelpress never modifies its input");
  }
  return Status::Ok();
}

int RunApp(CLI::App& app, int argc, char** argv, const int* exit_code) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return *exit_code;
}

}  // namespace modelpress::cli
