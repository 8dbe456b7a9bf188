// ONNX Runtime and ONNX's checker judge structurally pruned models: removing
// channels that are exactly zero changes no output; --ratio 0.3 gives models
// that pass the checker and run; ratio 0 gives the same bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "modelpress/prune.h"
#include "modelpress/sparsity.h"
#include "prune/channels_patterns.h"
#include "support/ort_runner.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using channels_test::Pattern;
using channels_test::Patterns;
using channels_test::ChosenUnits;
using channels_test::SilenceUnits;

nlohmann::json Compare(const std::filesystem::path& a, const std::filesystem::path& b, const std::string& mode) {
  std::string err;
  auto j = testing::OrtCompare(a, b, mode, &err);
  EXPECT_FALSE(j.is_null()) << err;
  return j;
}

// Zeroes the chosen channels of `original`, prunes a copy at ratio 0.3, and
// has ONNX Runtime compare the two.
void ExpectZeroChannelsRemovedExactly(Model original, const std::string& what, const std::string& tolerance) {
  testing::TempDir dir;
  const ChannelAnalysis a = AnalyzeChannelGroups(original);
  const auto units = ChosenUnits(a);
  ASSERT_FALSE(units.empty()) << what;
  SilenceUnits(original, a, units);
  ASSERT_TRUE(SaveModel(original, dir / "zeroed.onnx").ok());
  auto pruned = LoadModel(dir / "zeroed.onnx");
  ASSERT_TRUE(pruned.ok());
  ChannelPruneOptions o;
  o.ratio = 0.3;
  auto r = PruneChannels(*pruned, o);
  ASSERT_TRUE(r.ok()) << what << ": " << r.status().message();
  int64_t removed = 0;
  for (const auto& g : r->groups) removed += g.channels_before - g.channels_after;
  EXPECT_EQ(removed, static_cast<int64_t>(units.size())) << what;
  ASSERT_TRUE(SaveModel(*pruned, dir / "pruned.onnx").ok());
  auto j = Compare(dir / "zeroed.onnx", dir / "pruned.onnx", tolerance);
  EXPECT_TRUE(j["passed"].get<bool>()) << what << ": " << j.dump();
  std::cout << "[ onnxruntime ] " << what << ": " << removed << " zero channels removed, max |diff| "
            << j["max_abs_diff"] << "\n";
}

class ChannelsOracle : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed (scripts/test installs it)";
  }
};

TEST_F(ChannelsOracle, EveryCouplingPatternKeepsItsOutputs) {
  for (const Pattern& p : Patterns()) ExpectZeroChannelsRemovedExactly(p.build().Build(), p.name, "--atol 1e-5 --rtol 1e-5");
}

const char* const kSamples[] = {"resnet_mini.onnx", "mobilenet_block.onnx", "transformer_tiny.onnx", "digits_cnn.onnx",
                                "digits_mlp.onnx"};

TEST_F(ChannelsOracle, SampleModelsKeepTheirOutputsWhenZeroChannelsGo) {
  for (const char* name : kSamples) {
    auto m = LoadModel(testing::SampleModelsDir() / name);
    ASSERT_TRUE(m.ok());
    ExpectZeroChannelsRemovedExactly(std::move(*m), name, "--atol 1e-5 --rtol 1e-4");
  }
}

TEST_F(ChannelsOracle, RatioPointThreePassesTheCheckerAndRunsAndRatioZeroIsIdentical) {
  for (const char* name : kSamples) {
    const auto original = testing::SampleModelsDir() / name;
    testing::TempDir dir;
    for (double ratio : {0.0, 0.3}) {
      auto m = LoadModel(original);
      ASSERT_TRUE(m.ok());
      ChannelPruneOptions o;
      o.ratio = ratio;
      auto r = PruneChannels(*m, o);
      ASSERT_TRUE(r.ok()) << name << ": " << r.status().message();
      auto check = CheckModel(*m);
      ASSERT_TRUE(check.ok()) << name << ": " << check.status().message();
      EXPECT_TRUE(check->ran);
      const auto out = dir / (ratio == 0.0 ? "zero.onnx" : "pruned.onnx");
      ASSERT_TRUE(SaveModel(*m, out).ok());
      if (ratio == 0.0) {
        EXPECT_EQ(r->parameters_after, r->parameters_before);
        EXPECT_TRUE(Compare(original, out, "--exact")["identical"].get<bool>()) << name;
      } else {
        EXPECT_LT(r->parameters_after, r->parameters_before) << name;
        EXPECT_LT(r->macs_after, r->macs_before) << name;
        auto j = Compare(original, out, "--atol 1e30 --rtol 0");
        EXPECT_TRUE(j["passed"].get<bool>()) << name << ": " << j.dump();
      }
    }
  }
}

// The torchvision exports of bench/structured/make_models.py, when present in
// <build>/structured (bench/structured/run.sh makes them; too slow to make here).
TEST_F(ChannelsOracle, TorchvisionModelsKeepTheirOutputsWhenZeroChannelsGo) {
  const auto dir = testing::CliPath().parent_path().parent_path().parent_path() / "structured";
  int found = 0;
  for (const char* name : {"resnet18", "mobilenet_v2", "densenet121", "squeezenet1_1", "efficientnet_b0",
                           "shufflenet_v2_x1_0"}) {
    const auto path = dir / (std::string(name) + ".onnx");
    if (!std::filesystem::exists(path)) continue;
    ++found;
    auto m = LoadModel(path);
    ASSERT_TRUE(m.ok());
    ExpectZeroChannelsRemovedExactly(std::move(*m), name, "--atol 1e-5 --rtol 1e-4");
  }
  if (found == 0) GTEST_SKIP() << "no torchvision exports in " << dir << " (run bench/structured/run.sh)";
}

}  // namespace
}  // namespace modelpress
