#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "modelpress/prune.h"
#include "modelpress/sparsity.h"

namespace modelpress {
namespace {

TensorView FloatView(const std::vector<float>& v, std::vector<int64_t> shape) {
  return {DType::kFloat32, std::move(shape), reinterpret_cast<const std::byte*>(v.data()), static_cast<int64_t>(v.size()), 4,
          Storage::kRaw};
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Reference: indices sorted by (|w|, index), the first k pruned.
Mask ReferenceMask(const std::vector<float>& w, int64_t k) {
  std::vector<size_t> order(w.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return std::fabs(w[a]) < std::fabs(w[b]); });
  Mask keep(w.size(), 1);
  for (int64_t i = 0; i < k; ++i) keep[order[i]] = 0;
  return keep;
}

TEST(UnstructuredMask, MatchesASortingReferenceExactly) {
  for (double s : {0.0, 0.1, 0.5, 0.9, 0.95, 0.999}) {
    const auto w = Random(10007, 3);
    Mask keep(w.size());
    ASSERT_TRUE(UnstructuredMask({FloatView(w, {10007}), {}}, s, keep).ok());
    const int64_t k = static_cast<int64_t>(std::floor(s * 10007 + 1e-6));
    EXPECT_EQ(keep, ReferenceMask(w, k)) << "sparsity " << s;
  }
}

TEST(UnstructuredMask, ExactCountForDecimalSparsities) {
  // 0.7 * 10 is 6.999999... in doubles; the target is still floor(7) = 7.
  const auto w = Random(10, 5);
  Mask keep(10);
  ASSERT_TRUE(UnstructuredMask({FloatView(w, {10}), {}}, 0.7, keep).ok());
  EXPECT_EQ(std::count(keep.begin(), keep.end(), 0), 7);
}

TEST(UnstructuredMask, TiesBrokenByLowerIndexWhateverTheThreads) {
  std::vector<float> w(1 << 20, 0.5f);  // all equal: spans several parallel chunks
  for (size_t i = 0; i < w.size(); i += 3) w[i] = -0.5f;
  Mask one(w.size()), many(w.size());
  ASSERT_TRUE(UnstructuredMask({FloatView(w, {1 << 20}), {}}, 0.4, one, 1).ok());
  ASSERT_TRUE(UnstructuredMask({FloatView(w, {1 << 20}), {}}, 0.4, many, 8).ok());
  EXPECT_EQ(one, many);
  const int64_t k = static_cast<int64_t>(std::floor(0.4 * (1 << 20)));
  for (int64_t i = 0; i < static_cast<int64_t>(w.size()); ++i) ASSERT_EQ(one[i], i < k ? 0 : 1) << i;
}

TEST(GlobalMasks, LargeTensorsWithTiesMatchTheReference) {
  // Over a million elements (enough for the sampled one-pass selection),
  // values on a 1/64 grid so that many tie with the threshold, some zeros;
  // then a case where 60% of the values are equal, which the sampled bracket
  // cannot narrow down (the selection falls back to radix passes).
  for (int variant = 0; variant < 2; ++variant) {
    std::vector<float> all = Random(1300000, 11);
    for (size_t i = 0; i < all.size(); ++i) {
      all[i] = std::round(all[i] * 64.0f) / 64.0f;
      if (variant == 1 && i % 5 < 3) all[i] = 0.25f;
    }
    const std::vector<float> a(all.begin(), all.begin() + 400000), b(all.begin() + 400000, all.begin() + 1000000),
        c(all.begin() + 1000000, all.end());
    for (double s : {0.05, 0.5, 0.9, 0.999}) {
      Mask ka(a.size()), kb(b.size()), kc(c.size());
      const std::vector<MaskInput> inputs = {{FloatView(a, {400, 1000}), {}}, {FloatView(b, {600000}), {}}, {FloatView(c, {300, 1000}), {}}};
      const std::vector<std::span<uint8_t>> keeps = {ka, kb, kc};
      ASSERT_TRUE(GlobalMasks(inputs, s, keeps, 2).ok());
      Mask got = ka;
      got.insert(got.end(), kb.begin(), kb.end());
      got.insert(got.end(), kc.begin(), kc.end());
      const int64_t zeros = std::count(all.begin(), all.end(), 0.0f);
      const int64_t k = std::max<int64_t>(static_cast<int64_t>(std::floor(s * all.size() + 1e-6)), zeros);
      ASSERT_EQ(got, ReferenceMask(all, k)) << "variant " << variant << " sparsity " << s;
    }
  }
}

TEST(UnstructuredMask, ExistingZerosCountTowardTheTarget) {
  std::vector<float> w = {0.0f, 5.0f, 0.0f, 4.0f, 3.0f, 2.0f, 1.0f, 6.0f, 7.0f, 8.0f};
  Mask keep(10);
  ASSERT_TRUE(UnstructuredMask({FloatView(w, {10}), {}}, 0.3, keep).ok());
  EXPECT_EQ(keep, (Mask{0, 1, 0, 1, 1, 1, 0, 1, 1, 1}));
  // Already sparser than asked: the zeros stay, nothing else is pruned.
  ASSERT_TRUE(UnstructuredMask({FloatView(w, {10}), {}}, 0.1, keep).ok());
  EXPECT_EQ(std::count(keep.begin(), keep.end(), 0), 2);
}

TEST(UnstructuredMask, PrunedWeightsNeverComeBack) {
  // After fine-tuning a pruned weight may have regrown; the previous mask keeps it pruned.
  std::vector<float> w = {9.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f, 7.0f};
  Mask previous = {0, 1, 1, 1, 1, 1, 1, 1};
  Mask keep(8);
  ASSERT_TRUE(UnstructuredMask({FloatView(w, {8}), previous}, 0.25, keep).ok());
  EXPECT_EQ(keep, (Mask{0, 0, 1, 1, 1, 1, 1, 1}));
}

TEST(UnstructuredMask, HalfAndBfloat16UseTheirMagnitudes) {
  std::vector<uint16_t> h;
  for (float f : {-4.0f, 0.5f, 3.0f, -0.25f, 2.0f, 1.0f}) h.push_back(FloatToHalf(f));
  TensorView v(DType::kFloat16, {6}, reinterpret_cast<const std::byte*>(h.data()), 6, 2, Storage::kRaw);
  Mask keep(6);
  ASSERT_TRUE(UnstructuredMask({v, {}}, 0.5, keep).ok());
  EXPECT_EQ(keep, (Mask{1, 0, 1, 0, 1, 0}));
  std::vector<uint16_t> b;
  for (float f : {-4.0f, 0.5f, 3.0f, -0.25f, 2.0f, 1.0f}) b.push_back(FloatToBfloat16(f));
  TensorView vb(DType::kBfloat16, {6}, reinterpret_cast<const std::byte*>(b.data()), 6, 2, Storage::kRaw);
  ASSERT_TRUE(UnstructuredMask({vb, {}}, 0.5, keep).ok());
  EXPECT_EQ(keep, (Mask{1, 0, 1, 0, 1, 0}));
}

TEST(GlobalMasks, OneThresholdAcrossTensors) {
  const std::vector<float> a = {0.1f, 0.2f, 0.3f, 0.4f};
  const std::vector<float> b = {1.0f, 2.0f, 0.15f, 3.0f, 4.0f, 5.0f};
  Mask ka(4), kb(6);
  std::vector<MaskInput> in = {{FloatView(a, {4}), {}}, {FloatView(b, {6}), {}}};
  std::vector<std::span<uint8_t>> keeps = {ka, kb};
  ASSERT_TRUE(GlobalMasks(in, 0.5, keeps).ok());
  EXPECT_EQ(ka, (Mask{0, 0, 0, 0}));
  EXPECT_EQ(kb, (Mask{1, 1, 0, 1, 1, 1}));
}

TEST(Masks, BadArguments) {
  const auto w = Random(8, 1);
  Mask keep(8), small(4);
  EXPECT_EQ(UnstructuredMask({FloatView(w, {8}), {}}, 1.0, keep).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(UnstructuredMask({FloatView(w, {8}), {}}, -0.1, keep).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(UnstructuredMask({FloatView(w, {8}), {}}, std::nan(""), keep).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(UnstructuredMask({FloatView(w, {8}), {}}, 0.5, small).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NMMask({FloatView(w, {2, 4}), {}}, 1, 3, 2, keep).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NMMask({FloatView(w, {2, 4}), {}}, 1, 1, 0, keep).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(NMMask({FloatView(w, {4, 2}), {}}, 1, 2, 4, keep).code(), StatusCode::kInvalidArgument);
}

TEST(NMMask, KeepsTheLargestTwoOfEveryFourAlongTheAxis) {
  // Gemm B [out=2, in=8] with transB=1: groups along axis 1.
  std::vector<float> w = {1, -5, 3, 2, 0.5f, 0.1f, -0.2f, 0.3f, 9, 8, 7, 6, 1, 1, 1, 1};
  Mask keep(16);
  ASSERT_TRUE(NMMask({FloatView(w, {2, 8}), {}}, 1, 2, 4, keep).ok());
  EXPECT_EQ(keep, (Mask{0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 0}));
}

TEST(NMMask, ConvGroupsRunAlongChannelsForEveryKernelPosition) {
  const std::vector<int64_t> shape = {3, 8, 3, 3};
  const auto w = Random(3 * 8 * 3 * 3, 11);
  Mask keep(w.size());
  ASSERT_TRUE(NMMask({FloatView(w, shape), {}}, 1, 2, 4, keep).ok());
  std::vector<float> pruned = w;
  for (size_t i = 0; i < w.size(); ++i) pruned[i] = keep[i] ? w[i] : 0.0f;
  const NMCheck along_c = CheckNM(FloatView(pruned, shape), 1, 2, 4);
  EXPECT_TRUE(along_c.compliant());
  EXPECT_EQ(along_c.groups, 3 * 2 * 9);
  // Independent check: each (k, group, kh, kw) keeps its two largest magnitudes.
  for (int k = 0; k < 3; ++k) {
    for (int g = 0; g < 8; g += 4) {
      for (int p = 0; p < 9; ++p) {
        std::vector<std::pair<float, int>> grp;
        for (int c = g; c < g + 4; ++c) grp.push_back({std::fabs(w[(k * 8 + c) * 9 + p]), c});
        std::sort(grp.begin(), grp.end(), [](auto a, auto b) { return a.first > b.first; });
        for (int j = 0; j < 4; ++j) EXPECT_EQ(keep[(k * 8 + grp[j].second) * 9 + p], j < 2 ? 1 : 0);
      }
    }
  }
}

TEST(NMMask, MatMulWeightGroupsRunAlongRows) {
  // MatMul B [in=4, out=3]: groups along axis 0.
  std::vector<float> w = {1, 10, 0.1f, 2, 20, 0.2f, 3, 30, 0.3f, 4, 40, 0.4f};
  Mask keep(12);
  ASSERT_TRUE(NMMask({FloatView(w, {4, 3}), {}}, ReductionAxisFor(LayerKind::kMatMul, 2), 2, 4, keep).ok());
  EXPECT_EQ(keep, (Mask{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1}));
}

TEST(NMMask, PreviouslyPrunedStayPruned) {
  std::vector<float> w = {9, 1, 2, 3};
  Mask previous = {0, 1, 1, 1};
  Mask keep(4);
  ASSERT_TRUE(NMMask({FloatView(w, {1, 4}), previous}, 1, 2, 4, keep).ok());
  EXPECT_EQ(keep, (Mask{0, 0, 1, 1}));
}

TEST(ReductionAxis, FollowsTheLayerKind) {
  EXPECT_EQ(ReductionAxisFor(LayerKind::kLinear, 2), 1);
  EXPECT_EQ(ReductionAxisFor(LayerKind::kConv, 4), 1);
  EXPECT_EQ(ReductionAxisFor(LayerKind::kMatMul, 3), 1);
  EXPECT_EQ(ReductionAxisFor(LayerKind::kConvTranspose, 4), 0);
}

TEST(ApplyMask, ZeroesPrunedElements) {
  std::vector<float> w = {1, 2, 3};
  MutableTensorView m{DType::kFloat32, {3}, std::as_writable_bytes(std::span(w))};
  ASSERT_TRUE(ApplyMask(m, Mask{1, 0, 1}).ok());
  EXPECT_EQ(w, (std::vector<float>{1, 0, 3}));
  EXPECT_FALSE(ApplyMask(m, Mask{1, 0}).ok());
}

TEST(Schedules, PolynomialFollowsZhuAndGupta) {
  PolynomialSchedule s{.initial = 0.0, .final = 0.8, .begin_step = 100, .end_step = 200};
  EXPECT_DOUBLE_EQ(s.SparsityAt(0), 0.0);
  EXPECT_DOUBLE_EQ(s.SparsityAt(100), 0.0);
  EXPECT_DOUBLE_EQ(s.SparsityAt(150), 0.8 - 0.8 * 0.125);
  EXPECT_DOUBLE_EQ(s.SparsityAt(200), 0.8);
  EXPECT_DOUBLE_EQ(s.SparsityAt(10000), 0.8);
  double last = 0;
  for (int t = 100; t <= 200; ++t) {
    EXPECT_GE(s.SparsityAt(t), last);
    last = s.SparsityAt(t);
  }
  s.frequency = 10;
  EXPECT_DOUBLE_EQ(s.SparsityAt(155), s.SparsityAt(150));
}

TEST(Schedules, IterativeRemovesAFractionOfWhatRemains) {
  IterativeSchedule s{.fraction = 0.2, .target = 0.9};
  EXPECT_DOUBLE_EQ(s.SparsityAt(0), 0.0);
  EXPECT_DOUBLE_EQ(s.SparsityAt(1), 0.2);
  EXPECT_NEAR(s.SparsityAt(2), 0.36, 1e-12);
  EXPECT_NEAR(s.SparsityAt(3), 0.488, 1e-12);
  // 0.8^10 = 0.107 > 0.1 and 0.8^11 = 0.086: the 11th round reaches 90%.
  EXPECT_EQ(s.Rounds(), 11);
  EXPECT_DOUBLE_EQ(s.SparsityAt(11), 0.9);
  EXPECT_DOUBLE_EQ(s.SparsityAt(50), 0.9);
}

}  // namespace
}  // namespace modelpress
