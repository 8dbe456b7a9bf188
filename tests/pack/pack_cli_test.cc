// modelpress pack / unpack / inspect on the command line.
#include <gtest/gtest.h>

#include <algorithm>

#include "modelpress/onnx_io.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::CliPath;
using testing::RunCommand;
using testing::ShellQuote;

std::string Cli() { return ShellQuote(CliPath().string()); }

TEST(PackCli, PackUnpackInspectAndTensorExtraction) {
  testing::TempDir dir;
  const auto model = testing::SampleModelsDir() / "digits_mlp.onnx";
  const std::string mpk = (dir / "m.mpk").string();
  auto r = RunCommand(Cli() + " pack " + ShellQuote(model.string()) + " -o " + ShellQuote(mpk) + " --level 9 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("byte for byte"), std::string::npos) << r.out;

  r = RunCommand(Cli() + " unpack " + ShellQuote(mpk) + " -o " + ShellQuote((dir / "m.onnx").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFile(dir / "m.onnx"), testing::ReadFile(model));
  // The smallest buffer cap the option takes: the same bytes; no cap at all is refused.
  r = RunCommand(Cli() + " unpack " + ShellQuote(mpk) + " --buffer-mib 1 -o " + ShellQuote((dir / "m1.onnx").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFile(dir / "m1.onnx"), testing::ReadFile(model));
  r = RunCommand(Cli() + " unpack " + ShellQuote(mpk) + " --buffer-mib 0 -o " + ShellQuote((dir / "m0.onnx").string()));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "m0.onnx"));

  r = RunCommand(Cli() + " inspect " + ShellQuote(mpk));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fc1.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("order-0 bound"), std::string::npos) << r.out;

  r = RunCommand(Cli() + " inspect --json " + ShellQuote(mpk));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"format\": \"mpk\""), std::string::npos) << r.out;

  r = RunCommand(Cli() + " unpack " + ShellQuote(mpk) + " --tensor fc2.bias -o " + ShellQuote((dir / "b.npy").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string npy = testing::ReadFile(dir / "b.npy");
  ASSERT_GT(npy.size(), 128u);
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(npy.find("'descr': '<f4'"), std::string::npos);
  EXPECT_NE(npy.find("'shape': (100,)"), std::string::npos);
  EXPECT_EQ(npy.size() % 64, 400u % 64);  // 64-byte aligned header, then 100 float32

  // With every tensor left in the graph section, --tensor finds it there and
  // writes the same file; inspect counts the tensors the graph holds.
  const std::string all_inline = (dir / "inline.mpk").string();
  r = RunCommand(Cli() + " pack " + ShellQuote(model.string()) + " -o " + ShellQuote(all_inline) +
                 " --min-tensor-bytes 1000000000");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunCommand(Cli() + " unpack " + ShellQuote(all_inline) + " --tensor fc2.bias -o " + ShellQuote((dir / "g.npy").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFile(dir / "g.npy"), npy);
  r = RunCommand(Cli() + " inspect " + ShellQuote(all_inline));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("holding 6 tensors"), std::string::npos) << r.out;

  r = RunCommand(Cli() + " unpack " + ShellQuote(mpk) + " --tensor nope -o " + ShellQuote((dir / "n.npy").string()));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("nope"), std::string::npos);

  // The graph section: the model's bytes without the payloads, so its node
  // names are there and it is far smaller than the model.
  r = RunCommand(Cli() + " unpack " + ShellQuote(mpk) + " --graph -o " + ShellQuote((dir / "g.bin").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string graph = testing::ReadFile(dir / "g.bin");
  EXPECT_NE(graph.find("fc1.weight"), std::string::npos);
  EXPECT_LT(graph.size() * 20, testing::ReadFile(model).size());
  r = RunCommand(Cli() + " inspect " + ShellQuote(mpk));
  EXPECT_NE(r.out.find("with the built-in graph dictionary"), std::string::npos) << r.out;
}

TEST(PackCli, CorruptArtifactsExitWithCode4AndNameTheFile) {
  testing::TempDir dir;
  std::string bytes = testing::ReadFile(testing::SampleModelsDir() / "digits_mlp.onnx");
  const std::string mpk = (dir / "m.mpk").string();
  auto r = RunCommand(Cli() + " pack " + ShellQuote((testing::SampleModelsDir() / "digits_mlp.onnx").string()) + " -o " + ShellQuote(mpk));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string a = testing::ReadFile(mpk);
  a.resize(a.size() - 100);
  testing::WriteFile(dir / "t.mpk", a);
  r = RunCommand(Cli() + " unpack " + ShellQuote((dir / "t.mpk").string()) + " -o " + ShellQuote((dir / "t.onnx").string()));
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_NE(r.err.find("t.mpk"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "t.onnx"));
  r = RunCommand(Cli() + " pack " + ShellQuote(mpk) + " -o " + ShellQuote((dir / "x.mpk").string()));
  EXPECT_EQ(r.exit_code, 4);  // an artifact is not an ONNX model
  r = RunCommand(Cli() + " pack " + ShellQuote((testing::SampleModelsDir() / "digits_mlp.onnx").string()) + " -o " +
                 ShellQuote((dir / "y.mpk").string()) + " --level 40");
  EXPECT_EQ(r.exit_code, 2);
  r = RunCommand(Cli() + " pack " + ShellQuote((testing::SampleModelsDir() / "digits_mlp.onnx").string()) + " -o " +
                 ShellQuote((dir / "y.mpk").string()) + " --inline-up-to 1000000");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--inline-up-to"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir / "y.mpk"));
}

// A model larger than the memory the system grants (64 MiB of weights under a
// 112 MiB address-space limit, where a small model packs): pack and inspect
// end with exit code 71 and a message naming the model, leave no output and
// the input as it was. They aborted before (exit 134).
TEST(PackCli, MemoryTheSystemRefusesIsAnErrorNotACrash) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer reserves more address space than the limit this test sets";
#else
  if (RunCommand("command -v prlimit").exit_code != 0) GTEST_SKIP() << "prlimit (util-linux) is not installed";
  testing::TempDir dir;
  const auto big = dir / "big.onnx";
  ASSERT_TRUE(SaveModel(testing::ModelBuilder()
                            .Input("x", {1, 4096})
                            .Weight("w", {4096, 4096})
                            .Node("MatMul", {"x", "w"}, {"y"})
                            .Output("y")
                            .Build(),
                        big)
                  .ok());
  const std::string before = testing::ReadFile(big);
  const std::string limited = "prlimit --as=" + std::to_string(112u << 20) + " -- " + Cli();
  auto r = RunCommand(limited + " pack " + ShellQuote((testing::SampleModelsDir() / "digits_mlp.onnx").string()) + " -o " +
                      ShellQuote((dir / "small.mpk").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string cmd : {"pack", "inspect"}) {
    r = RunCommand(limited + " " + cmd + " " + ShellQuote(big.string()) +
                   (cmd == "pack" ? " -o " + ShellQuote((dir / "big.mpk").string()) : ""));
    EXPECT_EQ(r.exit_code, 71) << cmd << ": " << r.err;
    EXPECT_EQ(r.err.rfind("modelpress: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find("big.onnx"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_EQ(testing::ReadFile(big), before);
  for (const auto& f : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = f.path().filename().string();
    EXPECT_TRUE(name == "big.onnx" || name == "small.mpk") << name;
  }
#endif
}

}  // namespace
}  // namespace modelpress
