// ONNX Runtime and ONNX's checker judge pruned models.
#include <gtest/gtest.h>

#include "modelpress/prune.h"
#include "support/ort_runner.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::ShellQuote;

const char* const kSamples[] = {"digits_mlp.onnx", "digits_cnn.onnx", "resnet_mini.onnx", "mobilenet_block.onnx",
                                "transformer_tiny.onnx"};

class PruneOracle : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed (scripts/test installs it)";
  }
};

UnstructuredOptions Options(double sparsity, PruneScope scope) {
  UnstructuredOptions o;
  o.sparsity = sparsity;
  o.scope = scope;
  return o;
}

nlohmann::json Compare(const std::filesystem::path& a, const std::filesystem::path& b, const std::string& mode) {
  std::string err;
  auto j = testing::OrtCompare(a, b, mode, &err);
  EXPECT_FALSE(j.is_null()) << err;
  return j;
}

TEST_P(PruneOracle, PrunedModelsPassTheCheckerAndRun) {
  const auto original = testing::SampleModelsDir() / GetParam();
  testing::TempDir dir;
  struct Variant {
    const char* file;
    std::function<Result<PruneReport>(Model&)> prune;
  };
  const Variant variants[] = {
      {"zero.onnx", [](Model& m) { return PruneUnstructured(m, Options(0.0, PruneScope::kLayer)); }},
      {"global.onnx", [](Model& m) { return PruneUnstructured(m, Options(0.8, PruneScope::kGlobal)); }},
      {"nm.onnx", [](Model& m) { return PruneNM(m, {}); }},
  };
  for (const Variant& v : variants) {
    auto m = LoadModel(original);
    ASSERT_TRUE(m.ok());
    auto r = v.prune(*m);
    ASSERT_TRUE(r.ok()) << v.file << ": " << r.status().message();
    auto check = CheckModel(*m);
    ASSERT_TRUE(check.ok()) << check.status().message();
    EXPECT_TRUE(check->ran);
    ASSERT_TRUE(SaveModel(*m, dir / v.file).ok());
  }
  // Sparsity 0 computes exactly what the original computes.
  auto same = Compare(original, dir / "zero.onnx", "--exact");
  EXPECT_TRUE(same["identical"].get<bool>()) << same.dump();
  // The pruned models load and run; their outputs differ from the original's but stay finite.
  for (const char* f : {"global.onnx", "nm.onnx"}) {
    auto diff = Compare(original, dir / f, "--atol 1e30 --rtol 0");
    EXPECT_TRUE(diff["passed"].get<bool>()) << f << ": " << diff.dump();
    EXPECT_FALSE(diff["identical"].get<bool>()) << f << " should differ from the dense model";
  }
}

INSTANTIATE_TEST_SUITE_P(Samples, PruneOracle, ::testing::ValuesIn(kSamples));

// 2:4 on the digits MLP costs little accuracy even without retraining; a
// broken N:M axis (pruning along the output axis) loses far more.
TEST(PruneOracleAccuracy, DigitsMlpTwoOfFour) {
  if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed";
  testing::TempDir dir;
  const auto samples = testing::SampleModelsDir();
  auto m = LoadModel(samples / "digits_mlp.onnx");
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(PruneNM(*m, {}).ok());
  ASSERT_TRUE(SaveModel(*m, dir / "nm.onnx").ok());
  const std::string data = ShellQuote((samples / "digits_test_x.npy").string()) + " " +
                           ShellQuote((samples / "digits_test_y.npy").string());
  auto dense = testing::RunOrtScript("accuracy.mjs", ShellQuote((samples / "digits_mlp.onnx").string()) + " " + data);
  auto nm = testing::RunOrtScript("accuracy.mjs", ShellQuote((dir / "nm.onnx").string()) + " " + data);
  ASSERT_FALSE(dense.is_null());
  ASSERT_FALSE(nm.is_null());
  std::cout << "[ onnxruntime ] digits_mlp top-1 dense " << dense["top1"] << ", 2:4 " << nm["top1"] << "\n";
  EXPECT_GT(nm["top1"].get<double>(), dense["top1"].get<double>() - 0.05);
}

}  // namespace
}  // namespace modelpress
