#include "support/test_paths.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace modelpress::testing {

std::filesystem::path SourceDir() { return MODELPRESS_SOURCE_DIR; }
std::filesystem::path SampleModelsDir() { return SourceDir() / "sample_models"; }
std::filesystem::path CliPath() { return std::filesystem::path(MODELPRESS_BINARY_DIR) / "tools/modelpress/modelpress"; }

std::filesystem::path ConformanceDir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("MODELPRESS_CONFORMANCE_DIR")) {
    p = env;
  } else {
    p = SourceDir().parent_path() / "shared" / "onnx-conformance";
  }
  return std::filesystem::is_directory(p) ? p : std::filesystem::path();
}

std::filesystem::path OrtDir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("MODELPRESS_ORT_DIR")) {
    p = env;
  } else {
    p = std::filesystem::path(MODELPRESS_BINARY_DIR) / "ort";
  }
  return std::filesystem::is_directory(p / "node_modules" / "onnxruntime-node") ? p : std::filesystem::path();
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "modelpress-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

CommandResult Modelpress(const std::string& args) { return RunCommand(ShellQuote(CliPath().string()) + " " + args); }

std::string Sample(const std::string& name) { return ShellQuote((SampleModelsDir() / name).string()); }

CommandResult RunCommand(const std::string& command) {
  TempDir dir;
  const std::string full = command + " >" + ShellQuote((dir / "out").string()) + " 2>" + ShellQuote((dir / "err").string());
  CommandResult r;
  const int status = std::system(full.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadFile(dir / "out");
  r.err = ReadFile(dir / "err");
  return r;
}

}  // namespace modelpress::testing
