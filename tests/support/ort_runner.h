// ONNX Runtime as the oracle: runs models through the scripts in tests/ort
// (npm's onnxruntime-node) and hands back what they report.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace modelpress::testing {

struct OrtOutput {
  std::string name;
  std::vector<int64_t> dims;
  std::string dtype;
  std::string npy;  // the whole .npy file ONNX Runtime's output was written to
};

// True when onnxruntime-node is installed (see OrtDir()).
bool OrtAvailable();

// Runs `model` on the given .npy inputs (in model input order).
std::vector<OrtOutput> RunOrt(const std::filesystem::path& model, const std::vector<std::filesystem::path>& inputs);

// Runs one of the tests/ort scripts with arguments, returning its JSON summary
// (and the exit code through `exit_code`). A script that fails to print JSON
// yields a null json with its stderr in `error`.
nlohmann::json RunOrtScript(const std::string& script, const std::string& args, int* exit_code = nullptr,
                            std::string* error = nullptr);

// compare.mjs: runs `a` and `b` on the same random inputs (batch 2) and
// compares their outputs under `options` ("--exact", "--atol X --rtol Y").
// Null json, with the script's stderr in `error`, when it reports nothing.
nlohmann::json OrtCompare(const std::filesystem::path& a, const std::filesystem::path& b, const std::string& options,
                          std::string* error = nullptr);

}  // namespace modelpress::testing
