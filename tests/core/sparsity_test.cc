#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "modelpress/sparsity.h"

namespace modelpress {
namespace {

// A float32 tensor that owns its values and hands out views of them.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;

  Tensor(std::vector<int64_t> s) : shape(std::move(s)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    values.assign(static_cast<size_t>(n), 0.0f);
  }
  TensorView view() const {
    return TensorView(DType::kFloat32, shape, reinterpret_cast<const std::byte*>(values.data()),
                      static_cast<int64_t>(values.size()), sizeof(float), Storage::kRaw);
  }
  // Row-major flat index of a full multi-index.
  float& at(std::initializer_list<int64_t> idx) {
    int64_t flat = 0;
    size_t d = 0;
    for (int64_t i : idx) flat = flat * shape[d++] + i;
    return values[static_cast<size_t>(flat)];
  }
};

struct GroupCount {
  int64_t groups = 0;
  int64_t violating = 0;
};

// Groups of M along `axis` for every position of the other axes, walked with
// row-major strides and an odometer over the multi-index.
GroupCount ReferenceNM(const std::vector<int64_t>& shape, const std::vector<float>& values, int axis, int n, int m) {
  const int rank = static_cast<int>(shape.size());
  std::vector<int64_t> stride(rank, 1);
  for (int d = rank - 2; d >= 0; --d) stride[d] = stride[d + 1] * shape[d + 1];
  std::vector<int64_t> idx(rank, 0);
  GroupCount c;
  while (true) {
    int64_t base = 0;
    for (int d = 0; d < rank; ++d) base += idx[d] * stride[d];
    for (int64_t start = 0; start < shape[axis]; start += m) {
      int nonzeros = 0;
      for (int64_t k = start; k < start + m; ++k) nonzeros += values[base + k * stride[axis]] != 0.0f ? 1 : 0;
      ++c.groups;
      c.violating += nonzeros > n ? 1 : 0;
    }
    int d = rank - 1;
    for (; d >= 0; --d) {
      if (d == axis) continue;
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
    if (d < 0) break;
  }
  return c;
}

TEST(CountZerosTest, CountsPositiveAndNegativeZeroOnly) {
  Tensor t({2, 4});
  t.values = {0.0f, -0.0f, 1.0f, std::numeric_limits<float>::quiet_NaN(), 1e-45f, 0.0f, -3.0f, 0.0f};
  EXPECT_EQ(CountZeros(t.view()), 4);
}

TEST(CountZerosTest, WorksOnWidenedStorage) {
  const std::vector<int32_t> slots = {0, -1, 0, 0, 5};
  const TensorView v(DType::kInt8, {5}, reinterpret_cast<const std::byte*>(slots.data()), 5, 4, Storage::kTyped);
  EXPECT_EQ(CountZeros(v), 3);
}

TEST(SplitAtAxisTest, SplitsAroundEachAxis) {
  const std::vector<int64_t> shape = {2, 3, 4, 5};
  const AxisSplit expected[] = {{1, 2, 60}, {2, 3, 20}, {6, 4, 5}, {24, 5, 1}};
  for (int axis = 0; axis < 4; ++axis) {
    auto s = SplitAtAxis(shape, axis);
    ASSERT_TRUE(s.ok()) << s.status().message();
    EXPECT_EQ(s->outer, expected[axis].outer) << axis;
    EXPECT_EQ(s->length, expected[axis].length) << axis;
    EXPECT_EQ(s->inner, expected[axis].inner) << axis;
  }
}

TEST(SplitAtAxisTest, NegativeAxisCountsFromTheEnd) {
  const std::vector<int64_t> shape = {2, 3, 4, 5};
  for (int axis = -4; axis < 0; ++axis) {
    auto neg = SplitAtAxis(shape, axis);
    auto pos = SplitAtAxis(shape, axis + 4);
    ASSERT_TRUE(neg.ok()) << axis;
    EXPECT_EQ(neg->outer, pos->outer) << axis;
    EXPECT_EQ(neg->length, pos->length) << axis;
    EXPECT_EQ(neg->inner, pos->inner) << axis;
  }
}

TEST(SplitAtAxisTest, OutOfRangeIsInvalidArgument) {
  const std::vector<int64_t> shape = {2, 3};
  for (int axis : {2, 3, -3, -100}) {
    auto s = SplitAtAxis(shape, axis);
    ASSERT_FALSE(s.ok()) << axis;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("[2, 3]"), std::string::npos) << s.status().message();
    EXPECT_NE(s.status().message().find("axis " + std::to_string(axis) + " "), std::string::npos)
        << s.status().message();
  }
  EXPECT_FALSE(SplitAtAxis(std::vector<int64_t>{}, 0).ok());
}

// Gemm B [out, in] with transB=1 reduces along axis 1.
TEST(CheckNMTest, GemmWeightCompliantAlongInputAxisOnly) {
  Tensor t({4, 8});
  // Every row keeps positions 0 and 1 of each group of 4 inputs.
  for (int64_t o = 0; o < 4; ++o) {
    for (int64_t i = 0; i < 8; ++i) t.at({o, i}) = (i % 4 < 2) ? 1.0f + o : 0.0f;
  }
  const NMCheck along_in = CheckNM(t.view(), 1, 2, 4);
  EXPECT_TRUE(along_in.applicable);
  EXPECT_TRUE(along_in.compliant());
  EXPECT_EQ(along_in.groups, 4 * 2);
  EXPECT_EQ(along_in.violating, 0);

  // Along the output axis, columns 0, 1, 4 and 5 are dense: 4 of 8 groups have 4 nonzeros.
  const NMCheck along_out = CheckNM(t.view(), 0, 2, 4);
  EXPECT_TRUE(along_out.applicable);
  EXPECT_FALSE(along_out.compliant());
  EXPECT_EQ(along_out.groups, 8);
  EXPECT_EQ(along_out.violating, 4);
}

TEST(CheckNMTest, ConvWeightGroupsAlongChannelsForEachPosition) {
  // [K=2, C=8, kH=2, kW=4]: nonzero where c % 4 < 2, so every group of 4
  // channels at a fixed (k, kh, kw) holds 2 nonzeros, while every run along kW
  // (and so every 4 consecutive elements in memory) is dense or empty.
  Tensor t({2, 8, 2, 4});
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t w = 0; w < 4; ++w) t.at({k, c, h, w}) = (c % 4 < 2) ? 0.5f : 0.0f;

  const NMCheck along_c = CheckNM(t.view(), 1, 2, 4);
  EXPECT_TRUE(along_c.compliant());
  EXPECT_EQ(along_c.groups, 2 * 2 * 4 * 2);  // K * kH * kW positions, 2 groups of 4 channels each

  const NMCheck along_last = CheckNM(t.view(), -1, 2, 4);
  EXPECT_FALSE(along_last.compliant());
  EXPECT_EQ(along_last.groups, 2 * 8 * 2);
  EXPECT_EQ(along_last.violating, 2 * 4 * 2);  // the (k, c, kh) rows with c % 4 < 2

  Tensor flat({2, 64});
  flat.values = t.values;
  const NMCheck flattened = CheckNM(flat.view(), 1, 2, 4);
  EXPECT_EQ(flattened.groups, 32);
  EXPECT_EQ(flattened.violating, 16);
}

TEST(CheckNMTest, CompliantInMemoryOrderIsNotCompliantAlongChannels) {
  // Nonzero where kw < 2: 2:4 along the last axis, but every channel group at kw < 2 is dense.
  Tensor t({2, 8, 2, 4});
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t c = 0; c < 8; ++c)
      for (int64_t h = 0; h < 2; ++h)
        for (int64_t w = 0; w < 4; ++w) t.at({k, c, h, w}) = (w < 2) ? -1.0f : 0.0f;

  EXPECT_TRUE(CheckNM(t.view(), 3, 2, 4).compliant());
  const NMCheck along_c = CheckNM(t.view(), 1, 2, 4);
  EXPECT_TRUE(along_c.applicable);
  EXPECT_EQ(along_c.groups, 32);
  EXPECT_EQ(along_c.violating, 2 * 2 * 2 * 2);  // K * kH * (kw < 2) * channel groups
}

TEST(CheckNMTest, ViolatingCountIsExact) {
  Tensor t({3, 8});
  // Row 0: groups with 2 and 3 nonzeros; row 1: 4 and 0; row 2: 1 and 2.
  const int per_group[3][2] = {{2, 3}, {4, 0}, {1, 2}};
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t g = 0; g < 2; ++g)
      for (int64_t k = 0; k < per_group[r][g]; ++k) t.at({r, g * 4 + (3 - k)}) = 1.0f;
  const NMCheck c = CheckNM(t.view(), 1, 2, 4);
  EXPECT_EQ(c.groups, 6);
  EXPECT_EQ(c.violating, 2);
  EXPECT_EQ(CheckNM(t.view(), 1, 1, 4).violating, 4);
  EXPECT_EQ(CheckNM(t.view(), 1, 3, 4).violating, 1);
  EXPECT_TRUE(CheckNM(t.view(), 1, 4, 4).compliant());
}

TEST(CheckNMTest, MatchesReferenceOnRandomTensors) {
  std::mt19937 rng(7);
  std::bernoulli_distribution zero(0.55);
  const std::vector<std::vector<int64_t>> shapes = {{8}, {4, 8}, {8, 12}, {4, 8, 3, 3}, {2, 4, 4, 2}, {3, 8, 5}};
  const std::pair<int, int> patterns[] = {{1, 2}, {2, 4}, {1, 4}, {3, 4}, {4, 8}, {2, 3}};
  for (const auto& shape : shapes) {
    Tensor t(shape);
    for (float& v : t.values) v = zero(rng) ? (rng() % 2 ? 0.0f : -0.0f) : 1.0f;
    for (int axis = 0; axis < static_cast<int>(shape.size()); ++axis) {
      for (auto [n, m] : patterns) {
        const NMCheck got = CheckNM(t.view(), axis, n, m);
        if (shape[axis] % m != 0) {
          EXPECT_FALSE(got.applicable);
          continue;
        }
        const GroupCount want = ReferenceNM(shape, t.values, axis, n, m);
        ASSERT_TRUE(got.applicable);
        EXPECT_EQ(got.groups, want.groups) << "axis " << axis << " " << n << ":" << m;
        EXPECT_EQ(got.violating, want.violating) << "axis " << axis << " " << n << ":" << m;
      }
    }
  }
}

TEST(CheckNMTest, LengthNotMultipleOfMIsNotApplicable) {
  Tensor t({4, 6});
  const NMCheck c = CheckNM(t.view(), 1, 2, 4);
  EXPECT_FALSE(c.applicable);
  EXPECT_FALSE(c.compliant());
  EXPECT_EQ(c.groups, 0);
  EXPECT_NE(c.reason.find('6'), std::string::npos) << c.reason;
  EXPECT_NE(c.reason.find('4'), std::string::npos) << c.reason;
  EXPECT_TRUE(CheckNM(t.view(), 0, 2, 4).applicable);
}

TEST(CheckNMTest, InvalidPatternIsNotApplicable) {
  Tensor t({4, 8});
  for (auto [n, m] : {std::pair{5, 4}, std::pair{1, 0}, std::pair{-1, 4}, std::pair{0, -4}}) {
    const NMCheck c = CheckNM(t.view(), 1, n, m);
    EXPECT_FALSE(c.applicable) << n << ":" << m;
    EXPECT_FALSE(c.reason.empty()) << n << ":" << m;
    EXPECT_EQ(c.groups, 0) << n << ":" << m;
  }
}

TEST(CheckNMTest, MissingAxisIsNotApplicable) {
  Tensor t({4, 8});
  for (int axis : {2, -3}) {
    const NMCheck c = CheckNM(t.view(), axis, 2, 4);
    EXPECT_FALSE(c.applicable) << axis;
    EXPECT_FALSE(c.reason.empty()) << axis;
  }
  Tensor scalar({});
  EXPECT_FALSE(CheckNM(scalar.view(), 0, 2, 4).applicable);
}

TEST(CheckNMTest, WorksOnWidenedFloat16) {
  // [2, 4] float16 in int32 slots: row 0 has 2 nonzeros (1.0, -0 is zero), row 1 has 3.
  const std::vector<uint32_t> slots = {0x3c00, 0x8000, 0x0000, 0x3c00, 0x3c00, 0x0001, 0x0000, 0xbc00};
  const TensorView v(DType::kFloat16, {2, 4}, reinterpret_cast<const std::byte*>(slots.data()), 8, 4, Storage::kTyped);
  const NMCheck c = CheckNM(v, 1, 2, 4);
  EXPECT_EQ(c.groups, 2);
  EXPECT_EQ(c.violating, 1);
}

}  // namespace
}  // namespace modelpress
