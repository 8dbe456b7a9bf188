#include "cli_base.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <new>
#include <string>
#include <string_view>

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
    case StatusCode::kResourceExhausted: return kExitResources;
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

namespace {

// "pack model.onnx": the subcommand that ran and its positional arguments.
std::string WhatRan(const CLI::App& app) {
  std::string what;
  for (const CLI::App* sub : app.get_subcommands()) {
    what = sub->get_name();
    for (const CLI::Option* opt : sub->get_options()) {
      if (!opt->get_positional()) continue;
      for (const std::string& v : opt->results()) what += " " + v;
    }
  }
  return what.empty() ? "modelpress" : what;
}

}  // namespace

void KeepStdoutForOutput(int argc, char** argv) {
  struct stat out{};
  // A terminal or /dev/null as standard output: nothing to keep apart.
  if (::fstat(STDOUT_FILENO, &out) != 0 || S_ISCHR(out.st_mode)) return;
  int kept = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    std::string option;  // "--output=" for the joined form
    int at = i;
    if (a == "-o" || a == "--output" || a == "--report") {
      if (++at >= argc) return;
      i = at;
    } else if (a.starts_with("--output=") || a.starts_with("--report=")) {
      option = std::string(a.substr(0, a.find('=') + 1));
    } else {
      continue;
    }
    struct stat st{};
    if (::stat(argv[at] + option.size(), &st) != 0 || st.st_dev != out.st_dev || st.st_ino != out.st_ino) continue;
    if (kept < 0) {
      kept = ::dup(STDOUT_FILENO);
      if (kept < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return;
    }
    argv[at] = ::strdup((option + "/dev/fd/" + std::to_string(kept)).c_str());
  }
}

int RunApp(CLI::App& app, int argc, char** argv, const int* exit_code) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  } catch (const std::bad_alloc&) {
    std::cerr << "modelpress: error: " << WhatRan(app) << ": out of memory (the system refused an allocation)\n";
    return kExitResources;
  } catch (const std::exception& e) {
    std::cerr << "modelpress: error: " << WhatRan(app) << ": internal error: " << e.what() << "\n";
    return kExitInternal;
  }
  return *exit_code;
}

}  // namespace modelpress::cli
