// ONNX Runtime judges what compress writes: model.onnx loads and runs with
// the accuracy report.json states, and unpacking model.mpk gives model.onnx
// back byte for byte.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/ort_runner.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

namespace fs = std::filesystem;
using testing::Modelpress;
using testing::ShellQuote;

std::string Q(const fs::path& p) { return ShellQuote(p.string()); }

class CompressOracle : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed (scripts/test installs it)";
  }
  testing::TempDir dir_;
};

TEST_P(CompressOracle, RunsInOnnxRuntimeAndUnpacksExactly) {
  const auto s = testing::SampleModelsDir();
  const fs::path out = dir_ / "out";
  const fs::path x = s / "digits_test_x.npy", y = s / "digits_test_y.npy";
  auto r = Modelpress("compress " + Q(s / "digits_mlp.onnx") + " --recipe " + Q(s / "recipes" / (GetParam() + ".yaml")) +
                      " -o " + Q(out) + " --eval-data " + Q(x) + " --eval-labels " + Q(y) + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rep = nlohmann::json::parse(testing::ReadFile(out / "report.json"));

  std::string err;
  auto before = testing::RunOrtScript("accuracy.mjs", Q(s / "digits_mlp.onnx") + " " + Q(x) + " " + Q(y), nullptr, &err);
  ASSERT_FALSE(before.is_null()) << err;
  auto after = testing::RunOrtScript("accuracy.mjs", Q(out / "model.onnx") + " " + Q(x) + " " + Q(y), nullptr, &err);
  ASSERT_FALSE(after.is_null()) << err;
  const double n = after["samples"].get<double>();
  std::cout << "[ onnxruntime ] " << GetParam() << ": top-1 " << before["top1"] << " -> " << after["top1"]
            << " (reference executor " << rep["accuracy"]["top1_after"] << "), "
            << rep["sizes"]["ratio_onnx_before_to_artifact"] << "x\n";
  // The reference executor and ONNX Runtime round differently in places: one
  // sample either way, no more.
  EXPECT_EQ(before["top1"], rep["accuracy"]["top1_before"]);
  EXPECT_NEAR(after["top1"].get<double>(), rep["accuracy"]["top1_after"].get<double>(), 1.0 / n + 1e-12);

  // The post-training target on the digits MLP: at least 20x smaller than the
  // float32 ONNX file with at most 1 point of top-1 lost.
  if (GetParam() == "edge-int8") {
    EXPECT_GE(rep["sizes"]["ratio_onnx_before_to_artifact"].get<double>(), 20.0);
    EXPECT_GE(after["top1"].get<double>(), before["top1"].get<double>() - 0.01 - 1e-12);
  }

  r = Modelpress("unpack " + Q(out / "model.mpk") + " -o " + Q(dir_ / "restored.onnx"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ReadFile(dir_ / "restored.onnx"), testing::ReadFile(out / "model.onnx"));
}

INSTANTIATE_TEST_SUITE_P(Recipes, CompressOracle,
                         ::testing::Values("edge-int8", "tensorrt-2of4", "slim-channels", "max-compression"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace modelpress
