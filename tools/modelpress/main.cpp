#include <CLI/CLI.hpp>

#include "cli_common.h"
#include "subcommands.h"

int main(int argc, char** argv) {
  modelpress::cli::TuneAllocator();
  CLI::App app{"modelpress: prune, quantize and pack ONNX models for shipping"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "modelpress 0.1.0");
  int exit_code = modelpress::cli::kExitOk;
  modelpress::cli::SetupInspect(app, &exit_code);
  modelpress::cli::SetupConvert(app, &exit_code);
  modelpress::cli::SetupPrune(app, &exit_code);
  modelpress::cli::SetupPack(app, &exit_code);
  modelpress::cli::SetupUnpack(app, &exit_code);
  modelpress::cli::SetupEval(app, &exit_code);
  modelpress::cli::SetupQuantize(app, &exit_code);
  modelpress::cli::SetupCompress(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : modelpress::cli::kExitUsage;
  }
  return exit_code;
}
