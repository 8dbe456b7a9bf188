// Pieces the subcommands that read or write ONNX models share: output
// options, checking and saving, formatting (and cli_base.h).
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "cli_base.h"
#include "modelpress/onnx_io.h"
#include "modelpress/status.h"

namespace modelpress::cli {

// Adds -o/--output, --external-data and --external-threshold to a subcommand
// that writes a model.
void AddModelOutputOptions(CLI::App* sub, std::string* output, SaveOptions* save);

// Runs ONNX's checker on `model` (when `check`; a notice when skipped) and
// saves it; returns the exit code after reporting any error.
int CheckAndSave(const Model& model, const std::string& output, const SaveOptions& save, bool check);

// Writes a JSON report to `path` once the model is saved (the report
// describes a model that exists); refuses, before any work, a report path
// that is the input model or the output (CheckReportPath).
Status CheckReportPath(const std::string& path, const std::string& model, const std::string& output);
int WriteReport(const std::string& path, const std::string& json);

// Prints rows as columns separated by two spaces; columns listed in
// `right_aligned` are padded on the left.
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::vector<size_t>& right_aligned);

// "12.5%"
std::string Percent(double fraction);

// "1.2 MB", "512 B": decimal units, three significant digits.
std::string HumanBytes(uint64_t bytes);
// "50,610"
std::string Grouped(int64_t n);

}  // namespace modelpress::cli
