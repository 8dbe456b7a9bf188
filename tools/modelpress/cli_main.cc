// Every subcommand, in libmodelpress_cli.so: the executable (main.cpp) loads
// it for everything but unpack, which needs neither ONNX nor protobuf.
#include <CLI/CLI.hpp>

#include <new>

#include "cli_base.h"
#include "subcommands.h"

// Thrown here, with this library's C++ runtime, for the executable's operator
// new (cli_base.h, SetBadAllocThrower).
extern "C" __attribute__((visibility("default"))) [[noreturn]] void modelpress_cli_throw_bad_alloc() {
  throw std::bad_alloc();
}

extern "C" __attribute__((visibility("default"))) int modelpress_cli_main(int argc, char** argv) {
  CLI::App app{modelpress::cli::kDescription};
  app.require_subcommand(1);
  app.set_version_flag("--version", modelpress::cli::kVersion);
  int exit_code = modelpress::cli::kExitOk;
  modelpress::cli::SetupInspect(app, &exit_code);
  modelpress::cli::SetupConvert(app, &exit_code);
  modelpress::cli::SetupPrune(app, &exit_code);
  modelpress::cli::SetupPack(app, &exit_code);
  modelpress::cli::SetupUnpack(app, &exit_code);
  modelpress::cli::SetupEval(app, &exit_code);
  modelpress::cli::SetupQuantize(app, &exit_code);
  modelpress::cli::SetupCompress(app, &exit_code);
  return modelpress::cli::RunApp(app, argc, argv, &exit_code);
}
