// `modelpress prune` end to end: reports, exit codes, nothing written on failure.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::Modelpress;
using testing::Sample;
using testing::ShellQuote;

TEST(PruneCli, UnstructuredGlobalWritesModelTableAndReport) {
  testing::TempDir dir;
  const std::string out = ShellQuote((dir / "p.onnx").string());
  const std::string report = ShellQuote((dir / "r.json").string());
  auto r = Modelpress("prune unstructured " + Sample("digits_mlp.onnx") + " -o " + out +
                      " --sparsity 0.9 --scope global --report " + report);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("fc2.weight"), std::string::npos);
  EXPECT_NE(r.out.find("sparsity 0.0% -> 90.0%"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(testing::ReadFile(dir / "r.json"));
  EXPECT_EQ(j["method"], "unstructured-global");
  EXPECT_EQ(j["totals"]["zeros_after"], 45180);
  // inspect agrees with the report.
  const auto ins = nlohmann::json::parse(Modelpress("inspect --json " + out).out);
  int64_t zeros = 0;
  for (const auto& t : ins["tensors"]) {
    if (t["role"] == "gemm_weight") zeros += t["zeros"].get<int64_t>();
  }
  EXPECT_EQ(zeros, 45180);
}

TEST(PruneCli, NMIsConfirmedByInspect) {
  testing::TempDir dir;
  const std::string out = ShellQuote((dir / "nm.onnx").string());
  auto r = Modelpress("prune nm " + Sample("digits_cnn.onnx") + " -o " + out + " --n 2 --m 4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("skipped: reduction length 1 is not a multiple of 4"), std::string::npos) << r.out;
  const auto ins = nlohmann::json::parse(Modelpress("inspect --json " + out).out);
  int compliant = 0;
  for (const auto& t : ins["tensors"]) {
    if (t["name"] == "conv1.weight") {
      EXPECT_EQ(t["nm_2_4"], "n/a");
    } else if (t["role"] == "conv_weight" || t["role"] == "gemm_weight") {
      EXPECT_EQ(t["nm_2_4"], "yes") << t["name"];
      ++compliant;
    }
  }
  EXPECT_EQ(compliant, 3);
}

TEST(PruneCli, ChannelsShrinksTensorsAsReportedAndInspectAgrees) {
  testing::TempDir dir;
  const std::string out = ShellQuote((dir / "c.onnx").string());
  const std::string report = ShellQuote((dir / "c.json").string());
  auto r = Modelpress("prune channels " + Sample("resnet_mini.onnx") + " -o " + out + " --ratio 0.3 --report " + report);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("parameters "), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(testing::ReadFile(dir / "c.json"));
  const auto before = nlohmann::json::parse(Modelpress("inspect --json " + Sample("resnet_mini.onnx")).out);
  const auto after = nlohmann::json::parse(Modelpress("inspect --json " + out).out);
  EXPECT_EQ(after["checker"]["status"], "passed");
  // The report's parameter totals are what the files really hold.
  EXPECT_EQ(j["totals"]["parameters_before"], before["totals"]["parameters"]);
  EXPECT_EQ(j["totals"]["parameters_after"], after["totals"]["parameters"]);
  EXPECT_LT(j["totals"]["parameters_after"].get<int64_t>(), j["totals"]["parameters_before"].get<int64_t>());
  EXPECT_LT(j["totals"]["macs_after"].get<int64_t>(), j["totals"]["macs_before"].get<int64_t>());
  int pruned = 0;
  for (const auto& g : j["groups"]) {
    if (g["pruned"].get<bool>()) {
      ++pruned;
      EXPECT_LT(g["channels_after"].get<int64_t>(), g["channels_before"].get<int64_t>());
      EXPECT_GT(g["channels_after"].get<int64_t>(), 0);
    }
  }
  EXPECT_GT(pruned, 0);
}

TEST(PruneCli, ChannelsAtRatioZeroWritesTheSameModel) {
  testing::TempDir dir;
  const auto out = dir / "same.onnx";
  auto r = Modelpress("prune channels " + Sample("resnet_mini.onnx") + " -o " + ShellQuote(out.string()) + " --ratio 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFile(out), testing::ReadFile(testing::SampleModelsDir() / "resnet_mini.onnx"));
}

TEST(PruneCli, BadArgumentsExitNonZeroAndWriteNothing) {
  testing::TempDir dir;
  const auto out = dir / "out.onnx";
  const std::string o = " -o " + ShellQuote(out.string());
  const std::vector<std::pair<std::string, int>> cases = {
      {"prune unstructured " + Sample("digits_mlp.onnx") + o + " --sparsity 1.0", 2},
      {"prune unstructured " + Sample("digits_mlp.onnx") + o + " --sparsity -0.5", 2},
      {"prune unstructured " + Sample("digits_mlp.onnx") + o + " --sparsity 0.5 --include nomatch", 2},
      {"prune unstructured " + Sample("digits_mlp.onnx") + o + " --sparsity 0.5 --layer fc1.weight", 2},
      {"prune unstructured " + Sample("digits_mlp.onnx") + o + " --sparsity 0.5 --scope sideways", 2},
      {"prune unstructured " + Sample("digits_mlp.onnx") + o, 2},
      {"prune nm " + Sample("digits_mlp.onnx") + o + " --n 3 --m 2", 2},
      {"prune nm " + Sample("digits_mlp.onnx") + o + " --m 0", 2},
      {"prune unstructured " + Sample("digits_mlp.onnx") + o + " --sparsity 0.5 --roles norm", 5},
      {"prune unstructured " + ShellQuote((dir / "missing.onnx").string()) + o + " --sparsity 0.5", 3},
      {"prune channels " + Sample("resnet_mini.onnx") + o + " --ratio 1.0", 2},
      {"prune channels " + Sample("resnet_mini.onnx") + o + " --ratio -0.1", 2},
      {"prune channels " + Sample("resnet_mini.onnx") + o + " --ratio 0.3 --criterion l3", 2},
      {"prune", 2},
  };
  for (const auto& [args, code] : cases) {
    auto r = Modelpress(args);
    EXPECT_EQ(r.exit_code, code) << args << "\n" << r.err;
    EXPECT_FALSE(r.err.empty()) << args;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
  }
  // A report path that is the input model (which it once overwrote) or the
  // output is refused before any work; the input is left as it was.
  const auto input = dir / "in.onnx";
  std::filesystem::copy_file(testing::SampleModelsDir() / "digits_mlp.onnx", input);
  const std::string before = testing::ReadFile(input);
  for (const std::string cmd : {"prune unstructured", "prune channels", "quantize"}) {
    const std::string args = cmd + " " + ShellQuote(input.string()) + o +
                             (cmd == "quantize" ? " --mode weight-only" : cmd == "prune channels" ? " --ratio 0.25" : " --sparsity 0.5");
    for (const auto& report : {input, out}) {
      auto r = Modelpress(args + " --report " + ShellQuote(report.string()));
      EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
      EXPECT_EQ(testing::ReadFile(input), before) << args;
      EXPECT_FALSE(std::filesystem::exists(out)) << args;
    }
  }
}

}  // namespace
}  // namespace modelpress
