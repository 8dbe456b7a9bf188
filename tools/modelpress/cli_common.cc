#include "cli_common.h"

#include <cstdio>
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

std::string HumanBytes(uint64_t bytes) {
  static const char* const kUnits[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000.0 && u < 4) {
    v /= 1000.0;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : v < 100 ? "%.1f %s" : "%.0f %s", v, kUnits[u]);
  }
  return buf;
}

std::string Grouped(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace modelpress::cli
