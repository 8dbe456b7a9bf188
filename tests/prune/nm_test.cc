#include <gtest/gtest.h>

#include "modelpress/prune.h"
#include "modelpress/sparsity.h"
#include "support/model_builder.h"

namespace modelpress {
namespace {

using testing::ModelBuilder;

Model Graph() {
  ModelBuilder b;
  b.Input("x", {1, 8, 6, 6})
      .Weight("conv", {16, 8, 3, 3})
      .Node("Conv", {"x", "conv"}, {"c"})
      .Attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .Weight("dw", {16, 1, 3, 3})
      .Node("Conv", {"c", "dw"}, {"d"})
      .Attr("group", int64_t{16})
      .Node("Flatten", {"d"}, {"f"})
      .Weight("gemm_t", {10, 576})
      .Node("Gemm", {"f", "gemm_t"}, {"g"})
      .Attr("transB", int64_t{1})
      .Weight("gemm_n", {10, 12})
      .Node("Gemm", {"g", "gemm_n"}, {"h"})
      .Weight("mm", {12, 6})
      .Node("MatMul", {"h", "mm"}, {"y"})
      .Output("y");
  return b.Build();
}

TEST(PruneNM, EveryEligibleTensorBecomesTwoOfFourAlongItsReductionAxis) {
  Model m = Graph();
  auto r = PruneNM(m, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  const std::vector<std::pair<const char*, int>> pruned = {{"conv", 1}, {"gemm_t", 1}, {"mm", 0}};
  for (const auto& [name, axis] : pruned) {
    auto v = m.View(name);
    EXPECT_TRUE(CheckNM(*v, axis, 2, 4).compliant()) << name;
    EXPECT_EQ(CountZeros(*v), v->size() / 2) << name;
  }
  // Gemm without transB: B is [in=10, out=12]; 10 is not a multiple of 4.
  // Depthwise conv: one input channel per group.
  for (const char* skipped : {"gemm_n", "dw"}) {
    EXPECT_EQ(CountZeros(*m.View(skipped)), 0) << skipped;
    bool listed = false;
    for (const auto& t : r->tensors) listed |= t.name == skipped && !t.pruned && t.reason.find("not a multiple of 4") != std::string::npos;
    EXPECT_TRUE(listed) << skipped;
  }
}

TEST(PruneNM, GemmWithoutTransposeGroupsAlongRows) {
  ModelBuilder b;
  b.Input("x", {2, 8}).Weight("B", {8, 3}).Node("Gemm", {"x", "B"}, {"y"}).Output("y");
  Model m = b.Build();
  ASSERT_TRUE(PruneNM(m, {}).ok());
  auto v = m.View("B");
  EXPECT_TRUE(CheckNM(*v, 0, 2, 4).compliant());
  EXPECT_FALSE(CheckNM(*v, 1, 2, 4).applicable);
}

TEST(PruneNM, OtherPatternsAndBadArguments) {
  Model m = Graph();
  NMOptions o;
  o.n = 1;
  o.m = 8;
  ASSERT_TRUE(PruneNM(m, o).ok());
  EXPECT_TRUE(CheckNM(*m.View("conv"), 1, 1, 8).compliant());
  EXPECT_EQ(CountZeros(*m.View("conv")), 16 * 8 * 9 * 7 / 8);
  Model m2 = Graph();
  const std::string before = m2.proto().SerializeAsString();
  for (auto [n, mm] : {std::pair{3, 2}, {1, 0}, {-1, 4}}) {
    o.n = n;
    o.m = mm;
    EXPECT_EQ(PruneNM(m2, o).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(m2.proto().SerializeAsString(), before);
}

TEST(PruneNM, NothingPrunableIsAnError) {
  ModelBuilder b;
  b.Input("x", {2, 6}).Weight("B", {6, 3}).Node("MatMul", {"x", "B"}, {"y"}).Output("y");
  Model m = b.Build();
  EXPECT_EQ(PruneNM(m, {}).status().code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace modelpress
