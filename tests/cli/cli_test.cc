// The modelpress binary end to end: tables, JSON, exit codes, and that bad
// input leaves no output behind.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::RunCommand;
using testing::Modelpress;
using testing::Sample;
using testing::ShellQuote;
using testing::TempDir;

const char* const kSamples[] = {"digits_mlp.onnx", "digits_cnn.onnx", "resnet_mini.onnx", "mobilenet_block.onnx",
                                "transformer_tiny.onnx"};

TEST(Cli, InspectPrintsTableForEverySample) {
  for (const char* name : kSamples) {
    auto r = Modelpress("inspect " + Sample(name));
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.err;
    EXPECT_NE(r.out.find("checker   passed"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("tensor"), std::string::npos);
    EXPECT_NE(r.out.find("total"), std::string::npos);
  }
}

TEST(Cli, InspectJsonAgreesWithItself) {
  for (const char* name : kSamples) {
    auto r = Modelpress("inspect --json " + Sample(name));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    int64_t params = 0, zeros = 0;
    uint64_t bytes = 0;
    for (const auto& t : j["tensors"]) {
      int64_t n = 1;
      for (int64_t d : t["shape"]) n *= d;
      EXPECT_EQ(t["parameters"].get<int64_t>(), n);
      params += n;
      zeros += t["zeros"].get<int64_t>();
      bytes += t["bytes"].get<uint64_t>();
    }
    EXPECT_EQ(j["totals"]["parameters"].get<int64_t>(), params) << name;
    EXPECT_EQ(j["totals"]["nonzero_parameters"].get<int64_t>(), params - zeros);
    EXPECT_EQ(j["totals"]["bytes"].get<uint64_t>(), bytes);
    EXPECT_EQ(j["checker"]["status"], "passed");
    EXPECT_EQ(j["inputs"][0]["name"], "input");
  }
}

TEST(Cli, InspectDigitsMlpRoles) {
  auto r = Modelpress("inspect --json " + Sample("digits_mlp.onnx"));
  ASSERT_EQ(r.exit_code, 0);
  const auto j = nlohmann::json::parse(r.out);
  int gemm = 0, bias = 0;
  for (const auto& t : j["tensors"]) {
    if (t["role"] == "gemm_weight") {
      ++gemm;
      // PyTorch exports Linear as Gemm with transB=1: weight [out, in], reduced along axis 1.
      EXPECT_EQ(t["reduction_axis"], 1);
      EXPECT_EQ(t["output_axis"], 0);
      EXPECT_EQ(t["nm_2_4"], "no");
    }
    bias += t["role"] == "bias";
  }
  EXPECT_EQ(gemm, 3);
  EXPECT_EQ(bias, 3);
  EXPECT_EQ(j["totals"]["parameters"], 64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10);
}

TEST(Cli, ConvertRoundTripsAndRefusesToOverwriteItsInput) {
  TempDir dir;
  const std::string in = (dir / "in.onnx").string();
  std::filesystem::copy_file(testing::SampleModelsDir() / "digits_cnn.onnx", in);
  const std::string before = testing::ReadFile(in);
  auto same = Modelpress("convert " + ShellQuote(in) + " -o " + ShellQuote(in));
  EXPECT_EQ(same.exit_code, 2) << same.err;
  EXPECT_EQ(testing::ReadFile(in), before);

  auto ext = Modelpress("convert " + ShellQuote(in) + " -o " + ShellQuote((dir / "ext.onnx").string()) +
                        " --external-data always --external-threshold 0");
  ASSERT_EQ(ext.exit_code, 0) << ext.err;
  EXPECT_TRUE(std::filesystem::exists(dir / "ext.onnx.data"));
  auto j = nlohmann::json::parse(Modelpress("inspect --json " + ShellQuote((dir / "ext.onnx").string())).out);
  EXPECT_TRUE(j["external_data"].get<bool>());
  auto back = Modelpress("convert " + ShellQuote((dir / "ext.onnx").string()) + " -o " +
                         ShellQuote((dir / "back.onnx").string()) + " --external-data never");
  ASSERT_EQ(back.exit_code, 0) << back.err;
  auto plain = Modelpress("convert " + ShellQuote(in) + " -o " + ShellQuote((dir / "plain.onnx").string()));
  ASSERT_EQ(plain.exit_code, 0);
  EXPECT_EQ(testing::ReadFile(dir / "back.onnx"), testing::ReadFile(dir / "plain.onnx"));

  auto bad = Modelpress("convert " + ShellQuote(in) + " -o " + ShellQuote((dir / "x.onnx").string()) +
                        " --external-data sometimes");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "x.onnx"));
}

// An output that is no regular file (a named pipe here; /dev/null and
// /dev/stdout alike) is written into, never replaced by a regular file. With `-o /dev/stdout` the messages
// go to standard error, so that the output stays intact.
TEST(Cli, OutputsThatAreNotRegularFilesAreWrittenIntoNotReplaced) {
  TempDir dir;
  const std::filesystem::path fifo = dir / "fifo";
  ASSERT_EQ(RunCommand("mkfifo " + ShellQuote(fifo.string())).exit_code, 0);
  const std::string model = testing::ReadFile(testing::SampleModelsDir() / "digits_cnn.onnx");
  const std::string got = (dir / "got.mpk").string();
  // (The reader gives up after a while: a pack that replaced the pipe would never open it.)
  auto pack = RunCommand("{ timeout 30 cat " + ShellQuote(fifo.string()) + " > " + ShellQuote(got) + " & " +
                         ShellQuote(testing::CliPath().string()) + " pack " + Sample("digits_cnn.onnx") + " -o " +
                         ShellQuote(fifo.string()) + "; status=$?; wait; exit $status; }");
  ASSERT_EQ(pack.exit_code, 0) << pack.err;
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  const std::string artifact = testing::ReadFile(got);
  EXPECT_GT(artifact.size(), 0u);

  // Standard output redirected to a file, then a pipe: the model alone.
  auto to_file = Modelpress("unpack " + ShellQuote(got) + " -o /dev/stdout");
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_TRUE(to_file.out == model) << to_file.out.size() << " bytes instead of " << model.size();
  EXPECT_NE(to_file.err.find("wrote"), std::string::npos);
  auto piped = RunCommand(ShellQuote(testing::CliPath().string()) + " convert " + Sample("digits_cnn.onnx") +
                          " -o /dev/stdout --no-check 2>/dev/null | cat");
  ASSERT_EQ(piped.exit_code, 0);
  EXPECT_TRUE(piped.out == model) << piped.out.size() << " bytes instead of " << model.size();

  // A name for a file descriptor that is not open (as /dev/stdout is when
  // standard output is closed) is an error, not a name to write a file under.
  std::filesystem::create_symlink("/proc/self/fd/9", dir / "fd9");
  auto closed = Modelpress("unpack " + ShellQuote(got) + " -o " + ShellQuote((dir / "fd9").string()));
  EXPECT_EQ(closed.exit_code, 3) << closed.err;
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "fd9"));

  // A link to a regular file is replaced like a file; what it named stays as it was.
  testing::WriteFile(dir / "real.onnx", "old");
  std::filesystem::create_symlink("real.onnx", dir / "link.onnx");
  auto linked = Modelpress("unpack " + ShellQuote(got) + " -o " + ShellQuote((dir / "link.onnx").string()));
  ASSERT_EQ(linked.exit_code, 0) << linked.err;
  EXPECT_FALSE(std::filesystem::is_symlink(dir / "link.onnx"));
  EXPECT_TRUE(testing::ReadFile(dir / "link.onnx") == model);
  EXPECT_EQ(testing::ReadFile(dir / "real.onnx"), "old");

  // External data has no place beside a pipe: refused before anything is
  // written (no reader is waiting, so an open of the pipe would hang).
  auto ext = Modelpress("convert " + Sample("digits_cnn.onnx") + " -o " + ShellQuote(fifo.string()) +
                        " --external-data always --external-threshold 0");
  EXPECT_EQ(ext.exit_code, 2) << ext.err;
  EXPECT_NE(ext.err.find("not a regular file"), std::string::npos) << ext.err;
  ASSERT_EQ(Modelpress("convert " + Sample("digits_cnn.onnx") + " -o " + ShellQuote((dir / "ext.onnx").string()) +
                       " --external-data always --external-threshold 0")
                .exit_code,
            0);
  ASSERT_EQ(Modelpress("pack " + ShellQuote((dir / "ext.onnx").string()) + " -o " + ShellQuote((dir / "ext.mpk").string()))
                .exit_code,
            0);
  auto unext = Modelpress("unpack " + ShellQuote((dir / "ext.mpk").string()) + " -o " + ShellQuote(fifo.string()));
  EXPECT_EQ(unext.exit_code, 2) << unext.err;
  EXPECT_NE(unext.err.find("not a regular file"), std::string::npos) << unext.err;
  EXPECT_TRUE(std::filesystem::is_fifo(fifo));
  EXPECT_FALSE(std::filesystem::exists(dir / "digits_cnn.onnx.data"));
  EXPECT_FALSE(std::filesystem::exists(dir / "fifo.data"));
}

// An artifact can come down a pipe (`curl … | modelpress unpack /dev/stdin`);
// a truncated one is refused as a truncated file is, with no output.
TEST(Cli, UnpackReadsAnArtifactFromAPipe) {
  TempDir dir;
  const std::string artifact = (dir / "m.mpk").string();
  ASSERT_EQ(Modelpress("pack " + Sample("resnet_mini.onnx") + " -o " + ShellQuote(artifact)).exit_code, 0);
  const std::string cli = ShellQuote(testing::CliPath().string());
  const std::string out = (dir / "m.onnx").string();
  auto whole = RunCommand("cat " + ShellQuote(artifact) + " | " + cli + " unpack /dev/stdin -o " + ShellQuote(out));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_TRUE(testing::ReadFile(out) == testing::ReadFile(testing::SampleModelsDir() / "resnet_mini.onnx"));
  auto tensor = RunCommand("cat " + ShellQuote(artifact) + " | " + cli + " unpack /dev/stdin --tensor onnx::Conv_74 -o " +
                           ShellQuote((dir / "w.npy").string()));
  EXPECT_EQ(tensor.exit_code, 0) << tensor.err;
  const std::string cut = (dir / "cut.onnx").string();
  auto truncated = RunCommand("head -c 2000 " + ShellQuote(artifact) + " | " + cli + " unpack /dev/stdin -o " + ShellQuote(cut));
  EXPECT_EQ(truncated.exit_code, 4) << truncated.err;
  EXPECT_NE(truncated.err.find("/dev/stdin: truncated"), std::string::npos) << truncated.err;
  EXPECT_FALSE(std::filesystem::exists(cut));
}

// Each bad input: the expected exit code, a one-line message naming the file, and no output.
struct BadCase {
  const char* what;
  int exit_code;
};

TEST(Cli, BadInputGivesOneLineErrorAndNoOutput) {
  TempDir dir;
  const std::string mlp = testing::ReadFile(testing::SampleModelsDir() / "digits_mlp.onnx");
  testing::WriteFile(dir / "truncated.onnx", mlp.substr(0, mlp.size() / 2));
  std::string noise(2000, '\0');
  for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>((i * 7919u) >> 3);
  testing::WriteFile(dir / "random.onnx", noise);

  // External-data cases start from a valid external save of the MLP.
  std::filesystem::create_directory(dir / "m");
  ASSERT_EQ(Modelpress("convert " + Sample("digits_mlp.onnx") + " -o " + ShellQuote((dir / "m" / "ext.onnx").string()) +
                       " --external-data always")
                .exit_code,
            0);
  std::filesystem::create_directory(dir / "s");
  std::filesystem::copy_file(dir / "m" / "ext.onnx", dir / "s" / "short.onnx");
  {
    // Keep only the first kilobyte of data: tensors beyond it no longer fit.
    const std::string data = testing::ReadFile(dir / "m" / "ext.onnx.data");
    testing::WriteFile(dir / "s" / "ext.onnx.data", data.substr(0, 1024));
  }
  std::string model = testing::ReadFile(dir / "m" / "ext.onnx");
  std::filesystem::copy_file(dir / "m" / "ext.onnx", dir / "m" / "nodata.onnx");
  // Same-length rewrites of the location keep the protobuf valid.
  const std::string loc = "ext.onnx.data";
  auto with_location = [&](const std::string& replacement) {
    std::string m2 = model;
    for (size_t p = m2.find(loc); p != std::string::npos; p = m2.find(loc, p + 1)) m2.replace(p, loc.size(), replacement);
    return m2;
  };
  testing::WriteFile(dir / "m" / "nodata.onnx", with_location("gone.onnx.dat"));
  testing::WriteFile(dir / "m" / "escape.onnx", with_location("../ext.onnx.d"));
  testing::WriteFile(dir / "ext.onnx.d", testing::ReadFile(dir / "m" / "ext.onnx.data"));
  testing::WriteFile(dir / "m" / "absolute.onnx", with_location("/etc/passwd__"));

  const std::vector<std::pair<std::filesystem::path, int>> cases = {
      {dir / "missing.onnx", 3},         {dir / "random.onnx", 4},          {dir / "truncated.onnx", 4},
      {dir / "s" / "short.onnx", 4},     {dir / "m" / "nodata.onnx", 3},    {dir / "m" / "escape.onnx", 4},
      {dir / "m" / "absolute.onnx", 4},
  };
  for (const auto& [input, code] : cases) {
    const std::string before = std::filesystem::exists(input) ? testing::ReadFile(input) : "";
    for (const std::string cmd : {"inspect", "convert"}) {
      const auto out = dir / "out.onnx";
      auto r = Modelpress(cmd + " " + ShellQuote(input.string()) + (cmd == "convert" ? " -o " + ShellQuote(out.string()) : ""));
      EXPECT_EQ(r.exit_code, code) << cmd << " " << input << ": " << r.err;
      EXPECT_NE(r.err.find(input.filename().string()), std::string::npos) << r.err;
      EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
      EXPECT_EQ(r.err.rfind("modelpress: error: ", 0), 0u) << r.err;
      EXPECT_FALSE(std::filesystem::exists(out)) << cmd << " " << input;
      if (!before.empty()) {
        EXPECT_EQ(testing::ReadFile(input), before);
      }
    }
  }
  // Nothing but what the test itself wrote: no temporaries left behind.
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    EXPECT_EQ(f.path().filename().string().find(".tmp"), std::string::npos) << f.path();
  }
}

TEST(Cli, UsageErrors) {
  EXPECT_EQ(Modelpress("").exit_code, 2);
  EXPECT_EQ(Modelpress("frobnicate").exit_code, 2);
  EXPECT_EQ(Modelpress("inspect").exit_code, 2);
  auto help = Modelpress("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("inspect"), std::string::npos);
}

}  // namespace
}  // namespace modelpress
