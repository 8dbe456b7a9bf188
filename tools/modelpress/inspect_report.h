// The report of `modelpress inspect --json` (docs/inspect_json.md), built
// apart from its printing so the CLI and the Python module give the same one.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "modelpress/status.h"

namespace modelpress::cli {

// True when `path` starts with the .mpk magic number.
bool IsArtifact(const std::string& path);

// An ONNX model: graph summary, per-tensor roles, bytes, zeros and 2:4
// compliance; ONNX's checker runs when `check`.
Result<nlohmann::json> InspectModelJson(const std::string& path, bool check);

// A .mpk artifact: sizes, per-tensor encoders and order-0 entropy bounds.
Result<nlohmann::json> InspectArtifactJson(const std::string& path);

// Either of the two, chosen by magic number, as JSON text (2-space indent).
Result<std::string> InspectJson(const std::string& path, bool check);

}  // namespace modelpress::cli
