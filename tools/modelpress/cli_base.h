// Pieces every subcommand shares that need neither ONNX nor protobuf: exit
// codes, error reporting, and the allocator (cli_common.h adds the rest).
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>

#include "modelpress/status.h"

namespace modelpress::cli {

inline constexpr const char* kDescription = "modelpress: prune, quantize and pack ONNX models for shipping";
inline constexpr const char* kVersion = "modelpress 0.1.0";

// Process exit codes (documented in docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;        // bad flags or option values
inline constexpr int kExitInput = 3;        // input missing or unreadable, output not writable
inline constexpr int kExitBadModel = 4;     // input malformed, inconsistent or refused for safety
inline constexpr int kExitUnsupported = 5;  // valid input this version cannot handle
inline constexpr int kExitInternal = 70;    // a bug in modelpress
inline constexpr int kExitResources = 71;   // the system refused memory (sysexits' EX_OSERR)

int ExitCodeFor(const Status& status);

// Prints "modelpress: error: <message>" on stderr and returns the exit code.
int Fail(const Status& status);

// Refuses an output path that is the input file itself: inputs are never modified.
Status CheckNotSameFile(const std::filesystem::path& input, const std::filesystem::path& output);

// Parses argv with `app`, whose subcommands' callbacks set `*exit_code`,
// and returns the exit code: theirs, 0 after --help or --version, or
// kExitUsage for bad flags (with CLI11's message). Memory the system refuses
// anywhere in a subcommand ends it with kExitResources and a message naming
// the subcommand's inputs; any other exception, with kExitInternal: never
// with an abort. Outputs are written to temporaries that are removed as the
// exception unwinds.
int RunApp(CLI::App& app, int argc, char** argv, const int* exit_code);

// When an output (-o, --output, --report) is the pipe or file standard
// output writes to (`-o /dev/stdout | ...`), moves standard output to standard
// error so that messages do not mix with the output, and points the option
// at a duplicate of the original standard output (/dev/fd/N). Called first
// in main, before either runtime prints anything.
void KeepStdoutForOutput(int argc, char** argv);

// Tunes malloc for model-sized buffers (allocator.cc); called first in main.
void TuneAllocator();

// The executable links its C++ runtime statically (main.cpp) and serves the
// plugin's operator new. An exception thrown by one runtime's unwinder and
// caught in code of the other aborts (each unwinder keeps its own register
// tables), so once the plugin is loaded, allocation failures are thrown by
// `thrower`, a function of the plugin, with the plugin's runtime: it throws
// std::bad_alloc and does not return.
void SetBadAllocThrower(void (*thrower)());

}  // namespace modelpress::cli
