#include "support/ort_runner.h"

#include <stdexcept>

#include "support/test_paths.h"

namespace modelpress::testing {

bool OrtAvailable() { return !OrtDir().empty(); }

nlohmann::json OrtCompare(const std::filesystem::path& a, const std::filesystem::path& b, const std::string& options,
                          std::string* error) {
  return RunOrtScript("compare.mjs", ShellQuote(a.string()) + " " + ShellQuote(b.string()) + " --batch 2 " + options,
                      nullptr, error);
}

nlohmann::json RunOrtScript(const std::string& script, const std::string& args, int* exit_code, std::string* error) {
  const std::string cmd = "MODELPRESS_ORT_DIR=" + ShellQuote(OrtDir().string()) + " node " +
                          ShellQuote((SourceDir() / "tests" / "ort" / script).string()) + " " + args;
  CommandResult r = RunCommand(cmd);
  if (exit_code != nullptr) *exit_code = r.exit_code;
  if (error != nullptr) *error = r.err;
  const auto last_line = r.out.find_last_of('{');
  if (r.out.empty() || last_line == std::string::npos) return nullptr;
  return nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
}

std::vector<OrtOutput> RunOrt(const std::filesystem::path& model, const std::vector<std::filesystem::path>& inputs) {
  TempDir out;
  std::string list;
  for (const auto& p : inputs) list += (list.empty() ? "" : ",") + p.string();
  int code = 0;
  std::string err;
  auto j = RunOrtScript("run.mjs", ShellQuote(model.string()) + " --inputs " + ShellQuote(list) + " --outdir " +
                                       ShellQuote(out.path().string()),
                        &code, &err);
  if (code != 0 || j.is_null()) throw std::runtime_error("ONNX Runtime failed on " + model.string() + ": " + err);
  std::vector<OrtOutput> outputs;
  for (const auto& o : j["outputs"]) {
    outputs.push_back({o["name"], o["dims"].get<std::vector<int64_t>>(), o["dtype"], ReadFile(o["file"].get<std::string>())});
  }
  return outputs;
}

}  // namespace modelpress::testing
