// AnalyzeChannelGroups alone: which channels are coupled, which tensors and
// shape integers follow them, and which groups are refused and why.
#include <gtest/gtest.h>

#include <numeric>

#include "modelpress/channel_groups.h"
#include "prune/channels_patterns.h"

namespace modelpress {
namespace {

using channels_test::Conv;
using testing::ModelBuilder;

ChannelAnalysis Analyze(const char* pattern) {
  for (const auto& p : channels_test::Patterns()) {
    if (std::string(p.name) == pattern) return AnalyzeChannelGroups(p.build().Build());
  }
  ADD_FAILURE() << "no pattern " << pattern;
  return {};
}

// The slice of `tensor` along `axis`, or nullptr.
const ChannelSlice* SliceOf(const ChannelAnalysis& a, const std::string& tensor, int axis) {
  for (const auto& s : a.slices) {
    if (s.tensor == tensor && s.axis == axis) return &s;
  }
  return nullptr;
}

// The group whose channels `tensor` computes (its axis-0 or output slice).
const ChannelGroup* GroupOf(const ChannelAnalysis& a, const std::string& tensor) {
  for (const auto& s : a.slices) {
    if (s.tensor == tensor && s.produces && !s.units.empty() && s.units[0] != kFixedUnit) {
      return &a.groups[a.unit_group[s.units[0]]];
    }
  }
  return nullptr;
}

std::vector<int64_t> Range(const ChannelGroup& g) {
  std::vector<int64_t> u(static_cast<size_t>(g.channels));
  std::iota(u.begin(), u.end(), g.first_unit);
  return u;
}

TEST(ChannelGroups, ChainSlicesFilterBiasPerChannelConstantsAndTheNextLayer) {
  const ChannelAnalysis a = Analyze("chain_with_channel_scale");
  const ChannelGroup* g = GroupOf(a, "wa");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->prunable) << g->reason;
  EXPECT_EQ(g->channels, 8);
  const auto units = Range(*g);
  EXPECT_EQ(SliceOf(a, "wa", 0)->units, units);
  EXPECT_EQ(SliceOf(a, "wa_b", 0)->units, units);
  EXPECT_EQ(SliceOf(a, "scale", 0)->units, units);  // [8,1,1] broadcast against [N,8,H,W]
  EXPECT_EQ(SliceOf(a, "shift", 1)->units, units);  // [1,8,1,1]
  const ChannelSlice* next = SliceOf(a, "wc", 1);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->units, units);
  EXPECT_FALSE(next->produces);
  EXPECT_TRUE(next->scored);
  const ChannelGroup* last = GroupOf(a, "wc");
  ASSERT_NE(last, nullptr);
  EXPECT_FALSE(last->prunable);
  EXPECT_NE(last->reason.find("graph output 'y'"), std::string::npos) << last->reason;
}

TEST(ChannelGroups, ResidualAddCouplesBothBranches) {
  const ChannelAnalysis a = Analyze("residual_add");
  const ChannelGroup* stem = GroupOf(a, "wa");
  ASSERT_NE(stem, nullptr);
  EXPECT_EQ(stem, GroupOf(a, "wb2"));
  EXPECT_EQ(stem->channels, 8);  // one unit per channel pair, not 16
  EXPECT_EQ(stem->producers.size(), 2u);
  EXPECT_EQ(SliceOf(a, "wa", 0)->units, SliceOf(a, "wb2", 0)->units);
  const ChannelGroup* inner = GroupOf(a, "wb");
  ASSERT_NE(inner, nullptr);
  EXPECT_NE(inner, stem);
  EXPECT_TRUE(inner->prunable);
}

TEST(ChannelGroups, ConcatMapsOffsetRangesAndKeepsGraphInputChannels) {
  const ChannelAnalysis a = Analyze("concat");
  const ChannelGroup* ga = GroupOf(a, "wa");
  const ChannelGroup* gb = GroupOf(a, "wb");
  ASSERT_TRUE(ga && gb);
  std::vector<int64_t> want = Range(*ga);
  want.insert(want.end(), 3, kFixedUnit);  // the concatenated graph input "x"
  for (int64_t u : Range(*gb)) want.push_back(u);
  EXPECT_EQ(SliceOf(a, "wc", 1)->units, want);
  EXPECT_EQ(SliceOf(a, "bn_scale", 0)->units, want);
  EXPECT_EQ(SliceOf(a, "bn_var", 0)->units, want);
  EXPECT_TRUE(SliceOf(a, "bn_scale", 0)->scored);
  EXPECT_FALSE(SliceOf(a, "bn_mean", 0)->scored);
}

TEST(ChannelGroups, DepthwiseConvCarriesItsInputChannelsAndItsGroupCount) {
  const ChannelAnalysis a = Analyze("depthwise_batchnorm");
  const ChannelGroup* g = GroupOf(a, "wa");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->prunable) << g->reason;
  const auto units = Range(*g);
  EXPECT_EQ(SliceOf(a, "wd", 0)->units, units);
  EXPECT_EQ(SliceOf(a, "wd_b", 0)->units, units);
  EXPECT_EQ(SliceOf(a, "bn1_scale", 0)->units, units);
  EXPECT_EQ(SliceOf(a, "bn2_var", 0)->units, units);
  EXPECT_EQ(SliceOf(a, "wc", 1)->units, units);
  EXPECT_EQ(SliceOf(a, "wd", 1), nullptr);  // [8,1,3,3]: nothing to slice on axis 1
  ASSERT_EQ(a.fixups.size(), 1u);
  EXPECT_EQ(a.fixups[0].kind, ShapeFixup::kConvGroup);
  EXPECT_EQ(a.fixups[0].units, units);
}

TEST(ChannelGroups, SqueezeExcitationGateJoinsTheGatedChannels) {
  const ChannelAnalysis a = Analyze("squeeze_excitation");
  const ChannelGroup* g = GroupOf(a, "wa");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g, GroupOf(a, "ws2"));
  EXPECT_EQ(g->channels, 8);
  EXPECT_EQ(SliceOf(a, "ws1", 1)->units, Range(*g));  // the squeeze reads the pooled channels
  const ChannelGroup* hidden = GroupOf(a, "ws1");
  ASSERT_NE(hidden, nullptr);
  EXPECT_TRUE(hidden->prunable);
  EXPECT_EQ(hidden->channels, 4);
}

TEST(ChannelGroups, FlattenTurnsEachChannelIntoABlockOfFeatures) {
  const ChannelAnalysis a = Analyze("flatten_gemm");
  const ChannelGroup* g = GroupOf(a, "wa");
  ASSERT_NE(g, nullptr);
  std::vector<int64_t> want;
  for (int64_t u : Range(*g)) want.insert(want.end(), 4, u);  // 2x2 pooled map per channel
  EXPECT_EQ(SliceOf(a, "w1", 1)->units, want);  // Gemm B [out, in] with transB=1
  const ChannelGroup* hidden = GroupOf(a, "w1");
  ASSERT_NE(hidden, nullptr);
  EXPECT_EQ(SliceOf(a, "w1", 0)->units, Range(*hidden));
  EXPECT_EQ(SliceOf(a, "c1", 0)->units, Range(*hidden));
  EXPECT_EQ(SliceOf(a, "w2", 0)->units, Range(*hidden));  // transB=0: B [in, out]
}

TEST(ChannelGroups, ReshapeIntoMatMulFixesTheShapeConstant) {
  const ChannelAnalysis a = Analyze("reshape_matmul");
  const ChannelGroup* g = GroupOf(a, "wa");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->prunable) << g->reason;
  EXPECT_EQ(SliceOf(a, "w1", 0)->units.size(), 24u);
  ASSERT_EQ(a.fixups.size(), 1u);
  EXPECT_EQ(a.fixups[0].kind, ShapeFixup::kReshapeDim);
  EXPECT_EQ(a.fixups[0].tensor, "shape");
  EXPECT_EQ(a.fixups[0].index, 1);
  EXPECT_EQ(a.fixups[0].units, SliceOf(a, "w1", 0)->units);
}

TEST(ChannelGroups, SplitAndSliceOnTheChannelAxisMapRanges) {
  const ChannelAnalysis a = Analyze("split_and_slice");
  const ChannelGroup* gs = GroupOf(a, "wa");
  const ChannelGroup* gl = GroupOf(a, "wc");
  ASSERT_TRUE(gs && gl);
  EXPECT_TRUE(gs->prunable) << gs->reason;
  EXPECT_TRUE(gl->prunable) << gl->reason;
  const auto split = Range(*gs);
  EXPECT_EQ(SliceOf(a, "wb0", 1)->units, std::vector<int64_t>(split.begin(), split.begin() + 3));
  EXPECT_EQ(SliceOf(a, "wb1", 1)->units, std::vector<int64_t>(split.begin() + 3, split.end()));
  const auto sliced = Range(*gl);
  EXPECT_EQ(SliceOf(a, "wb2", 1)->units, std::vector<int64_t>(sliced.begin() + 2, sliced.begin() + 9));
  int splits = 0, starts = 0, ends = 0;
  for (const auto& f : a.fixups) {
    splits += f.kind == ShapeFixup::kSplitSize;
    starts += f.kind == ShapeFixup::kSliceStart && f.tensor == "starts" && f.units.size() == 2;
    ends += f.kind == ShapeFixup::kSliceEnd && f.tensor == "ends" && f.units.size() == 9;
  }
  EXPECT_EQ(splits, 2);
  EXPECT_EQ(starts, 1);
  EXPECT_EQ(ends, 1);
}

TEST(ChannelGroups, MlpHiddenDimensionPassesThroughGelu) {
  const ChannelAnalysis a = Analyze("mlp_hidden_gelu");
  const ChannelGroup* g = GroupOf(a, "w1");
  ASSERT_NE(g, nullptr);
  EXPECT_TRUE(g->prunable) << g->reason;
  EXPECT_EQ(g->channels, 32);
  EXPECT_EQ(SliceOf(a, "b1", 0)->units, Range(*g));
  EXPECT_EQ(SliceOf(a, "w2", 0)->units, Range(*g));
  EXPECT_EQ(SliceOf(a, "one", 0), nullptr);  // scalars broadcast, never sliced
  EXPECT_FALSE(GroupOf(a, "w2")->prunable);
}

TEST(ChannelGroups, ConvTransposeProducesOnItsSecondAxis) {
  const ChannelAnalysis a = Analyze("convtranspose");
  const ChannelGroup* g = GroupOf(a, "wt");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->channels, 8);
  EXPECT_EQ(SliceOf(a, "wt", 1)->units, Range(*g));
  EXPECT_EQ(SliceOf(a, "wc", 1)->units, Range(*g));
}

// Patterns that cannot be proved safe are refused, with a reason naming the node.
struct Refusal {
  const char* name;
  std::function<ModelBuilder()> build;
  const char* reason;  // substring of the reason of the group of "wa"
};

ModelBuilder Stem(int64_t channels = 8) {
  ModelBuilder b;
  b.Input("x", {1, 3, 4, 4});
  Conv(b, "x", "a", "wa", channels, 3, 3);
  b.Node("Relu", {"a"}, {"r"});
  return b;
}

const Refusal kRefusals[] = {
    {"channel_shuffle",
     [] {
       ModelBuilder b = Stem();
       b.Initializer(testing::Int64Tensor("s5", {1, 2, 4, 4, 4})).Node("Reshape", {"r", "s5"}, {"v"});
       b.Node("Transpose", {"v"}, {"t"}).Attr("perm", std::vector<int64_t>{0, 2, 1, 3, 4});
       b.Initializer(testing::Int64Tensor("s4", {1, 8, 4, 4})).Node("Reshape", {"t", "s4"}, {"u"});
       Conv(b, "u", "y", "wc", 4, 8, 3);
       return b.Output("y");
     },
     "splits or mixes channels"},
    {"grouped_conv",
     [] {
       ModelBuilder b = Stem();
       Conv(b, "r", "y", "wg", 4, 8, 3, 2);
       return b.Output("y");
     },
     "group=2"},
    {"attention_matmul",
     [] {
       ModelBuilder b;
       b.Input("x", {1, 5, 16}).Weight("wa", {16, 16}).Node("MatMul", {"x", "wa"}, {"q"});
       b.Node("Transpose", {"q"}, {"qt"}).Attr("perm", std::vector<int64_t>{0, 2, 1});
       b.Node("MatMul", {"q", "qt"}, {"y"});
       return b.Output("y");
     },
     "MatMul"},
    {"add_with_graph_input",
     [] {
       ModelBuilder b;
       b.Input("x", {1, 3, 4, 4}).Input("x2", {1, 8, 4, 4});
       Conv(b, "x", "a", "wa", 8, 3, 3);
       b.Node("Add", {"a", "x2"}, {"s"});
       Conv(b, "s", "y", "wc", 4, 8, 3);
       return b.Output("y");
     },
     "'x2'"},
    {"softmax_over_channels",
     [] {
       ModelBuilder b = Stem();
       b.Node("Softmax", {"r"}, {"s"}).Attr("axis", int64_t{1});
       Conv(b, "s", "y", "wc", 4, 8, 3);
       return b.Output("y");
     },
     "normalised across channels"},
    {"unknown_operator",
     [] {
       ModelBuilder b = Stem();
       b.Node("LRN", {"r"}, {"l"}).Attr("size", int64_t{3});
       Conv(b, "l", "y", "wc", 4, 8, 3);
       return b.Output("y");
     },
     "LRN"},
    {"reaches_output_through_a_branch",
     [] {
       ModelBuilder b = Stem();
       Conv(b, "r", "y", "wc", 4, 8, 3);
       b.Output("y").Output("r");
       return b;
     },
     "graph output 'r'"},
};

class ChannelRefusals : public ::testing::TestWithParam<Refusal> {};

TEST_P(ChannelRefusals, GroupIsRefusedWithAReason) {
  const Refusal& r = GetParam();
  const ChannelAnalysis a = AnalyzeChannelGroups(r.build().Build());
  const ChannelGroup* g = GroupOf(a, "wa");
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(g->prunable);
  EXPECT_NE(g->reason.find(r.reason), std::string::npos) << g->reason;
}

INSTANTIATE_TEST_SUITE_P(Patterns, ChannelRefusals, ::testing::ValuesIn(kRefusals),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(ChannelGroups, SharedWeightIsSlicedPerReader) {
  ModelBuilder b;
  b.Input("x", {1, 3, 4, 4});
  b.Weight("w", {8, 3, 3, 3}).Node("Conv", {"x", "w"}, {"a1"}).Node("Conv", {"x", "w"}, {"a2"});
  b.Node("Relu", {"a1"}, {"r1"}).Node("Relu", {"a2"}, {"r2"});
  Conv(b, "r1", "y1", "wc1", 4, 8, 3);
  Conv(b, "r2", "y2", "wc2", 4, 8, 3);
  b.Output("y1").Output("y2");
  const ChannelAnalysis a = AnalyzeChannelGroups(b.Build());
  std::vector<const ChannelSlice*> w;
  for (const auto& s : a.slices) {
    if (s.tensor == "w") w.push_back(&s);
  }
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0]->node_index, w[1]->node_index);
  const ChannelGroup& g0 = a.groups[a.unit_group[w[0]->units[0]]];
  const ChannelGroup& g1 = a.groups[a.unit_group[w[1]->units[0]]];
  EXPECT_NE(g0.id, g1.id);
  EXPECT_TRUE(g0.prunable && g1.prunable);
}

TEST(ChannelGroups, AnalysisDoesNotChangeTheModel) {
  for (const auto& p : channels_test::Patterns()) {
    Model m = p.build().Build();
    const std::string before = m.proto().SerializeAsString();
    (void)AnalyzeChannelGroups(m);
    EXPECT_EQ(m.proto().SerializeAsString(), before) << p.name;
  }
}

}  // namespace
}  // namespace modelpress
