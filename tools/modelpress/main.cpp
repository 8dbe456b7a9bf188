// The modelpress executable. `unpack` runs here, linked only with the
// artifact reader, zstd and the C++ runtime; every other subcommand lives in
// libmodelpress_cli.so, loaded on demand, because ONNX and protobuf take
// about 6 ms to load and initialise: three times what unpacking a small
// model takes (docs/artifact_format.md, "Performance").
#include <dlfcn.h>

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <string_view>

#include "cli_base.h"
#include "subcommands.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kPlugin = "libmodelpress_cli.so";

// Next to the executable (the build tree), else where `cmake --install`
// puts it relative to the executable's folder.
fs::path PluginPath() {
  std::error_code ec;
  const fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (fs::exists(dir / kPlugin, ec)) return dir / kPlugin;
  return (dir / MODELPRESS_PLUGIN_DIR / kPlugin).lexically_normal();
}

int RunUnpack(int argc, char** argv) {
  CLI::App app{modelpress::cli::kDescription};
  app.require_subcommand(1);
  int exit_code = modelpress::cli::kExitOk;
  modelpress::cli::SetupUnpack(app, &exit_code);
  return modelpress::cli::RunApp(app, argc, argv, &exit_code);
}

}  // namespace

int main(int argc, char** argv) {
  modelpress::cli::TuneAllocator();
  modelpress::cli::KeepStdoutForOutput(argc, argv);
  if (argc > 1 && std::string_view(argv[1]) == "unpack") return RunUnpack(argc, argv);
  const fs::path plugin = PluginPath();
  void* handle = dlopen(plugin.c_str(), RTLD_LAZY | RTLD_LOCAL);
  if (handle == nullptr) {
    std::cerr << "modelpress: error: cannot load " << plugin.string() << ": " << dlerror() << "\n";
    return modelpress::cli::kExitInternal;
  }
  using Main = int (*)(int, char**);
  auto cli_main = reinterpret_cast<Main>(dlsym(handle, "modelpress_cli_main"));
  if (cli_main == nullptr) {
    std::cerr << "modelpress: error: " << plugin.string() << " has no modelpress_cli_main\n";
    return modelpress::cli::kExitInternal;
  }
  using Thrower = void (*)();
  if (auto thrower = reinterpret_cast<Thrower>(dlsym(handle, "modelpress_cli_throw_bad_alloc"))) {
    modelpress::cli::SetBadAllocThrower(thrower);
  }
  return cli_main(argc, argv);
}
