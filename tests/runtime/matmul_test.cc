// MatMul (batched, broadcast, 1-D) and Gemm (transposes, alpha/beta, C
// broadcast) against triple loops.
#include <gtest/gtest.h>

#include "run_graph.h"

namespace modelpress::runtime {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

TEST(MatMul, BroadcastBatchesMatchLoops) {
  // A [2, 1, 3, 4] x B [3, 4, 5] -> [2, 3, 3, 5]
  const auto a = RandomValues(2 * 3 * 4, 1), b = RandomValues(3 * 4 * 5, 2);
  ModelBuilder mb;
  mb.Input("a", {2, 1, 3, 4}).Input("b", {3, 4, 5});
  mb.Node("MatMul", {"a", "b"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 1, 3, 4}, a), Tensor::FromFloats({3, 4, 5}, b)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  std::vector<float> want;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 5; ++c) {
          double s = 0;
          for (int k = 0; k < 4; ++k) s += static_cast<double>(a[(i * 3 + r) * 4 + k]) * b[(j * 4 + k) * 5 + c];
          want.push_back(static_cast<float>(s));
        }
  EXPECT_EQ((*out)[0].shape(), (std::vector<int64_t>{2, 3, 3, 5}));
  EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
}

TEST(MatMul, OneDimensionalOperandsDropTheirAxis) {
  const auto a = RandomValues(4, 3), b = RandomValues(2 * 4 * 3, 4);
  ModelBuilder mb;
  mb.Input("a", {4}).Weight("b", {2, 4, 3}, b);
  mb.Node("MatMul", {"a", "b"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({4}, a)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].shape(), (std::vector<int64_t>{2, 3}));
  std::vector<float> want;
  for (int i = 0; i < 2; ++i)
    for (int c = 0; c < 3; ++c) {
      double s = 0;
      for (int k = 0; k < 4; ++k) s += static_cast<double>(a[k]) * b[(i * 4 + k) * 3 + c];
      want.push_back(static_cast<float>(s));
    }
  EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
}

TEST(Gemm, TransposesAlphaBetaAndBroadcastC) {
  const int64_t m = 3, k = 5, n = 4;
  for (int ta = 0; ta < 2; ++ta) {
    for (int tb = 0; tb < 2; ++tb) {
      SCOPED_TRACE(std::to_string(ta) + std::to_string(tb));
      const auto a = RandomValues(m * k, 5), b = RandomValues(k * n, 6), c = RandomValues(n, 7);
      ModelBuilder mb;
      mb.Input("a", ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k});
      mb.Weight("b", tb ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, b).Weight("c", {n}, c);
      mb.Node("Gemm", {"a", "b", "c"}, {"y"}).Attr("transA", int64_t{ta}).Attr("transB", int64_t{tb})
          .Attr("alpha", 0.5f).Attr("beta", 2.0f);
      mb.Output("y");
      auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats(ta ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k}, a)});
      ASSERT_TRUE(out.ok()) << out.status().message();
      std::vector<float> want;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0;
          for (int64_t p = 0; p < k; ++p) {
            const float av = ta ? a[p * m + i] : a[i * k + p];
            const float bv = tb ? b[j * k + p] : b[p * n + j];
            s += static_cast<double>(av) * bv;
          }
          want.push_back(static_cast<float>(0.5 * s + 2.0 * c[j]));
        }
      EXPECT_LT(test::MaxScaledDiff(want, (*out)[0].values<float>()), test::kGemmTolerance);
    }
  }
}

TEST(MatMul, InnerDimensionMismatchIsAnError) {
  ModelBuilder mb;
  mb.Input("a", {2, 3}).Weight("b", {4, 2});
  mb.Node("MatMul", {"a", "b"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 3}, RandomValues(6, 1))});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("inner dimensions"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace modelpress::runtime
