// Every subcommand: an options struct filled by Setup<Cmd> and run by Run<Cmd>.
#pragma once

#include <CLI/CLI.hpp>

namespace modelpress::cli {

// Each Setup adds its subcommand to `app` and arranges for its Run to be
// called, storing the exit code in `*exit_code`.
void SetupInspect(CLI::App& app, int* exit_code);
void SetupConvert(CLI::App& app, int* exit_code);
void SetupPrune(CLI::App& app, int* exit_code);
// Adds `channels` under the `prune` parent that SetupPrune creates.
void SetupPruneChannels(CLI::App* prune, int* exit_code);
void SetupPack(CLI::App& app, int* exit_code);
void SetupUnpack(CLI::App& app, int* exit_code);
void SetupEval(CLI::App& app, int* exit_code);
void SetupQuantize(CLI::App& app, int* exit_code);
void SetupCompress(CLI::App& app, int* exit_code);

}  // namespace modelpress::cli
