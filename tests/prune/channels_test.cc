// Structured pruning: when the channels it removes are exactly zero, the
// pruned model computes what the original computes (reference executor);
// ratio 0 changes nothing; bad options and unprunable models are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "modelpress/prune.h"
#include "modelpress/runtime.h"
#include "modelpress/sparsity.h"
#include "prune/channels_patterns.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using channels_test::Pattern;
using channels_test::Patterns;
using channels_test::ChosenUnits;
using channels_test::SilenceUnits;
using testing::ModelBuilder;

// Elements of the floating-point constants, counted independently of the library.
int64_t Parameters(const Model& m) {
  int64_t n = 0;
  for (const auto& t : m.proto().graph().initializer()) {
    if (t.data_type() != onnx::TensorProto::FLOAT) continue;
    int64_t c = 1;
    for (int64_t d : t.dims()) c *= d;
    n += c;
  }
  return n;
}

Model Copy(const Model& m) { return std::move(Model::FromProto(m.proto(), m.base_dir(), m.source())).value(); }

std::vector<float> Execute(const Model& m, const std::vector<int64_t>& shape) {
  auto exec = runtime::Executor::Create(m);
  EXPECT_TRUE(exec.ok()) << exec.status().message();
  if (!exec.ok()) return {};
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  const auto x = testing::RandomValues(static_cast<size_t>(n), 99);
  auto out = exec->Run({runtime::Tensor::FromFloats(shape, x)});
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return {};
  auto v = (*out)[0].values<float>();
  return {v.begin(), v.end()};
}

// ModelBuilder's outputs declare no shape, which ONNX's checker refuses in
// the main graph: pruning must not change the checker's verdict.
void ExpectCheckerVerdictKept(const Model& original, const Model& pruned, const std::string& what) {
  auto before = CheckModel(original);
  auto after = CheckModel(pruned);
  EXPECT_EQ(before.ok(), after.ok()) << what << ": " << after.status().message();
  if (before.ok()) return;
  EXPECT_NE(before.status().message().find("'shape' of 'type' is required"), std::string::npos) << before.status().message();
  EXPECT_EQ(before.status().message(), after.status().message()) << what;
}

void ExpectClose(const std::vector<float>& want, const std::vector<float>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-5 * std::fabs(want[i])) << what << " element " << i;
  }
}

class ChannelPatterns : public ::testing::TestWithParam<Pattern> {};

TEST_P(ChannelPatterns, RemovingZeroChannelsKeepsTheOutputs) {
  const Pattern& p = GetParam();
  Model original = p.build().Build();
  const ChannelAnalysis a = AnalyzeChannelGroups(original);
  const std::set<int64_t> units = ChosenUnits(a);
  ASSERT_FALSE(units.empty()) << p.name << " has no prunable group";
  SilenceUnits(original, a, units);
  Model pruned = Copy(original);
  ChannelPruneOptions o;
  o.ratio = 0.3;
  auto r = PruneChannels(pruned, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  for (const auto& g : r->groups) {
    const ChannelGroup& ag = a.groups[g.id];
    if (!ag.prunable) {
      EXPECT_EQ(g.channels_after, g.channels_before);
      continue;
    }
    int64_t removed = 0;
    for (int64_t u = ag.first_unit; u < ag.first_unit + ag.channels; ++u) removed += units.count(u);
    EXPECT_EQ(g.channels_after, g.channels_before - removed) << p.name << " group " << g.id;
  }
  EXPECT_LT(r->parameters_after, r->parameters_before);
  EXPECT_LT(r->macs_after, r->macs_before);
  EXPECT_EQ(r->parameters_after, Parameters(pruned));
  ExpectCheckerVerdictKept(original, pruned, p.name);
  ExpectClose(Execute(original, p.input), Execute(pruned, p.input), p.name);
}

INSTANTIATE_TEST_SUITE_P(Patterns, ChannelPatterns, ::testing::ValuesIn(Patterns()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(PruneChannels, RatioZeroLeavesTheModelUnchanged) {
  for (const Pattern& p : Patterns()) {
    Model m = p.build().Build();
    const std::string before = m.proto().SerializeAsString();
    ChannelPruneOptions o;
    o.ratio = 0.0;
    auto r = PruneChannels(m, o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(m.proto().SerializeAsString(), before) << p.name;
    EXPECT_EQ(r->parameters_after, r->parameters_before);
    EXPECT_EQ(r->macs_after, r->macs_before);
  }
}

TEST(PruneChannels, RoundToKeepsMultiples) {
  ModelBuilder b;
  b.Input("x", {1, 3, 6, 6});
  channels_test::Conv(b, "x", "a", "wa", 32, 3, 3);
  b.Node("Relu", {"a"}, {"r"});
  channels_test::Conv(b, "r", "y", "wc", 4, 32, 3);
  b.Output("y");
  Model m = b.Build();
  ChannelPruneOptions o;
  o.ratio = 0.3;  // 32 - 9 = 23 kept, rounded up to 24
  o.round_to = 8;
  auto r = PruneChannels(m, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->groups[0].channels_after, 24);
  EXPECT_EQ(m.FindTensor("wa")->proto->dims(0), 24);
  EXPECT_EQ(m.FindTensor("wc")->proto->dims(1), 24);
}

TEST(PruneChannels, GlobalScopeRemovesTheRequestedShareOverall) {
  Model m = Patterns()[1].build().Build();  // residual_add: groups of 8 (coupled) and 8
  ChannelPruneOptions o;
  o.ratio = 0.5;
  o.scope = PruneScope::kGlobal;
  auto r = PruneChannels(m, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  int64_t before = 0, after = 0;
  for (const auto& g : r->groups) {
    if (!g.reason.empty()) continue;
    before += g.channels_before;
    after += g.channels_after;
    EXPECT_GE(g.channels_after, 1);
  }
  EXPECT_EQ(after, before - before / 2);
  ExpectCheckerVerdictKept(Patterns()[1].build().Build(), m, "residual_add");
}

TEST(PruneChannels, ExcludeLeavesMatchingGroupsWhole) {
  Model m = Patterns()[0].build().Build();
  ChannelPruneOptions o;
  o.exclude = "^wa$";
  auto r = PruneChannels(m, o);
  ASSERT_FALSE(r.ok());  // the only prunable group is excluded
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

TEST(PruneChannels, BadOptionsAreRefusedAndLeaveTheModelAlone) {
  Model m = Patterns()[0].build().Build();
  const std::string before = m.proto().SerializeAsString();
  for (double ratio : {-0.1, 1.0, 1.5, std::nan("")}) {
    ChannelPruneOptions o;
    o.ratio = ratio;
    auto r = PruneChannels(m, o);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << ratio;
  }
  ChannelPruneOptions o;
  o.round_to = 0;
  EXPECT_EQ(PruneChannels(m, o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.exclude = "(";
  EXPECT_EQ(PruneChannels(m, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.proto().SerializeAsString(), before);
}

TEST(PruneChannels, ModelWithNothingPrunableIsRefused) {
  ModelBuilder b;
  b.Input("x", {1, 3, 6, 6});
  channels_test::Conv(b, "x", "y", "wa", 8, 3, 3);
  b.Output("y");
  Model m = b.Build();
  auto r = PruneChannels(m, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("graph output 'y'"), std::string::npos) << r.status().message();
}

TEST(PruneChannels, NoGroupLosesEveryChannelEvenNearRatioOne) {
  for (const Pattern& p : Patterns()) {
    Model m = p.build().Build();
    ChannelPruneOptions o;
    o.ratio = 0.99;
    auto r = PruneChannels(m, o);
    ASSERT_TRUE(r.ok()) << p.name << ": " << r.status().message();
    for (const auto& g : r->groups) EXPECT_GE(g.channels_after, 1) << p.name;
    for (const TensorEntry& e : m.tensors()) {
      for (int64_t d : e.proto->dims()) EXPECT_GT(d, 0) << p.name << " " << e.name;
    }
    ExpectCheckerVerdictKept(p.build().Build(), m, p.name);
    EXPECT_FALSE(Execute(m, p.input).empty()) << p.name;
  }
}

TEST(PruneChannels, SampleModelsStayEquivalentWhenZeroChannelsGo) {
  for (const char* name : {"resnet_mini.onnx", "mobilenet_block.onnx", "transformer_tiny.onnx", "digits_cnn.onnx"}) {
    auto loaded = LoadModel(testing::SampleModelsDir() / name);
    ASSERT_TRUE(loaded.ok());
    Model original = std::move(*loaded);
    const ChannelAnalysis a = AnalyzeChannelGroups(original);
    SilenceUnits(original, a, ChosenUnits(a));
    Model pruned = Copy(original);
    ChannelPruneOptions o;
    o.ratio = 0.3;
    auto r = PruneChannels(pruned, o);
    ASSERT_TRUE(r.ok()) << name << ": " << r.status().message();
    EXPECT_LT(r->parameters_after, r->parameters_before) << name;
    std::vector<int64_t> shape;
    for (const auto& d : original.proto().graph().input(0).type().tensor_type().shape().dim()) {
      shape.push_back(d.has_dim_value() ? d.dim_value() : 2);
    }
    auto check = CheckModel(pruned);
    EXPECT_TRUE(check.ok()) << name << ": " << check.status().message();
    ExpectClose(Execute(original, shape), Execute(pruned, shape), name);
  }
}

}  // namespace
}  // namespace modelpress
