// Pieces every subcommand shares: exit codes, error reporting, formatting.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "modelpress/onnx_io.h"
#include "modelpress/status.h"

namespace modelpress::cli {

// Process exit codes (documented in docs/cli.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 2;        // bad flags or option values
inline constexpr int kExitInput = 3;        // input missing or unreadable, output not writable
inline constexpr int kExitBadModel = 4;     // input malformed, inconsistent or refused for safety
inline constexpr int kExitUnsupported = 5;  // valid input this version cannot handle
inline constexpr int kExitInternal = 70;    // a bug in modelpress

int ExitCodeFor(const Status& status);

// Prints "modelpress: error: <message>" on stderr and returns the exit code.
int Fail(const Status& status);

// Refuses an output path that is the input file itself: inputs are never modified.
Status CheckNotSameFile(const std::filesystem::path& input, const std::filesystem::path& output);

// Adds -o/--output, --external-data and --external-threshold to a subcommand
// that writes a model.
void AddModelOutputOptions(CLI::App* sub, std::string* output, SaveOptions* save);

// Runs ONNX's checker on `model` (when `check`; a notice when skipped) and
// saves it; returns the exit code after reporting any error.
int CheckAndSave(const Model& model, const std::string& output, const SaveOptions& save, bool check);

// Prints rows as columns separated by two spaces; columns listed in
// `right_aligned` are padded on the left.
// Tunes malloc for model-sized buffers (allocator.cc); called first in main.
void TuneAllocator();

void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<size_t>& right_aligned);

// "12.5%"
std::string Percent(double fraction);

// "1.2 MB", "512 B": decimal units, three significant digits.
std::string HumanBytes(uint64_t bytes);
// "50,610"
std::string Grouped(int64_t n);

}  // namespace modelpress::cli
