// Where tests find the project's files, the built CLI and shared data.
#pragma once

#include <filesystem>
#include <string>

namespace modelpress::testing {

std::filesystem::path SourceDir();
std::filesystem::path SampleModelsDir();
// The modelpress binary of this build.
std::filesystem::path CliPath();
// ../shared/onnx-conformance next to the checkout (or $MODELPRESS_CONFORMANCE_DIR); empty when absent.
std::filesystem::path ConformanceDir();
// The folder holding node_modules/onnxruntime-node ($MODELPRESS_ORT_DIR or <build>/ort); empty when absent.
std::filesystem::path OrtDir();

// A fresh empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Runs a shell command, returning its exit status and capturing stdout (stderr goes to `err` when given).
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::string& command);

// Quotes a string for /bin/sh.
std::string ShellQuote(const std::string& s);

// Runs the modelpress binary of this build with `args` (already shell-quoted where needed).
CommandResult Modelpress(const std::string& args);
// A bundled sample model or data file, shell-quoted for Modelpress().
std::string Sample(const std::string& name);

std::string ReadFile(const std::filesystem::path& p);
void WriteFile(const std::filesystem::path& p, const std::string& bytes);

}  // namespace modelpress::testing
