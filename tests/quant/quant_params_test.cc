// Scale/zero-point math, rounding and weight quantization against values
// worked out by hand (chosen so that every quotient is exact in binary).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "modelpress/quant.h"
#include "modelpress/sparsity.h"

namespace modelpress::quant {
namespace {

TEST(QuantParams, Uint8AsymmetricHandDerived) {
  // [-1, 3]: scale 4/255, zero point round(0 - (-1) / (4/255)) = round(63.75) = 64.
  QuantParams p = ComputeParams(-1.0f, 3.0f, Scheme::kUint8Asymmetric);
  EXPECT_FLOAT_EQ(p.scale, 4.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 64);
  // [-5, 505]: scale exactly 2, zero point 2.5 rounds half to even: 2.
  p = ComputeParams(-5.0f, 505.0f, Scheme::kUint8Asymmetric);
  EXPECT_EQ(p.scale, 2.0f);
  EXPECT_EQ(p.zero_point, 2);
  // [-7, 503]: 3.5 rounds to 4.
  EXPECT_EQ(ComputeParams(-7.0f, 503.0f, Scheme::kUint8Asymmetric).zero_point, 4);
}

TEST(QuantParams, RangeAlwaysIncludesZero) {
  // [2, 5] widens to [0, 5]: zero point 0.
  QuantParams p = ComputeParams(2.0f, 5.0f, Scheme::kUint8Asymmetric);
  EXPECT_FLOAT_EQ(p.scale, 5.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 0);
  // [-5, -2] widens to [-5, 0]: zero point 255.
  p = ComputeParams(-5.0f, -2.0f, Scheme::kUint8Asymmetric);
  EXPECT_FLOAT_EQ(p.scale, 5.0f / 255.0f);
  EXPECT_EQ(p.zero_point, 255);
  EXPECT_EQ(DequantizeValue(QuantizeValue(0.0f, p, Scheme::kUint8Asymmetric), p), 0.0f);
}

TEST(QuantParams, Int8SymmetricUsesMinus127To127) {
  // max |r| = 63.5: scale = 127 / 254 ... = 63.5 / 127 = 0.5, zero point 0.
  QuantParams p = ComputeParams(-63.5f, 10.0f, Scheme::kInt8Symmetric);
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(p.zero_point, 0);
  EXPECT_EQ(QuantizeValue(-1000.0f, p, Scheme::kInt8Symmetric), -127);  // never -128
  EXPECT_EQ(QuantizeValue(1000.0f, p, Scheme::kInt8Symmetric), 127);
  EXPECT_EQ(RangeOf(Scheme::kInt8Symmetric).qmin, -127);
  EXPECT_EQ(RangeOf(Scheme::kUint8Asymmetric).qmax, 255);
}

TEST(QuantParams, TinyOrZeroRangeGivesScaleOne) {
  for (float r : {0.0f, 1e-40f, std::numeric_limits<float>::min() * 10.0f}) {
    for (Scheme s : {Scheme::kUint8Asymmetric, Scheme::kInt8Symmetric}) {
      QuantParams p = ComputeParams(-r, r, s);
      EXPECT_EQ(p.scale, 1.0f) << r;
      EXPECT_EQ(p.zero_point, 0) << r;
    }
  }
  // NaN bounds count as 0.
  QuantParams p = ComputeParams(std::nanf(""), std::nanf(""), Scheme::kUint8Asymmetric);
  EXPECT_EQ(p.scale, 1.0f);
}

TEST(QuantParams, RoundHalfToEvenAndSaturation) {
  const QuantParams one{1.0f, 0};
  const Scheme s8 = Scheme::kInt8Symmetric;
  EXPECT_EQ(QuantizeValue(0.5f, one, s8), 0);
  EXPECT_EQ(QuantizeValue(1.5f, one, s8), 2);
  EXPECT_EQ(QuantizeValue(2.5f, one, s8), 2);
  EXPECT_EQ(QuantizeValue(-0.5f, one, s8), 0);
  EXPECT_EQ(QuantizeValue(-1.5f, one, s8), -2);
  EXPECT_EQ(QuantizeValue(-2.5f, one, s8), -2);
  EXPECT_EQ(QuantizeValue(126.5f, one, s8), 126);
  // std::round would give 3 here; the spec's rounding gives 2.
  EXPECT_NE(QuantizeValue(2.5f, one, s8), static_cast<int32_t>(std::round(2.5f)));
  const QuantParams mid{0.5f, 128};
  EXPECT_EQ(QuantizeValue(-1000.0f, mid, Scheme::kUint8Asymmetric), 0);
  EXPECT_EQ(QuantizeValue(1000.0f, mid, Scheme::kUint8Asymmetric), 255);
  EXPECT_EQ(QuantizeValue(0.25f, mid, Scheme::kUint8Asymmetric), 128);  // 0.5 -> 0, + 128
  EXPECT_EQ(QuantizeValue(0.75f, mid, Scheme::kUint8Asymmetric), 130);  // 1.5 -> 2
  EXPECT_EQ(QuantizeValue(std::nanf(""), mid, Scheme::kUint8Asymmetric), 128);
}

TEST(QuantParams, Sqnr) {
  EXPECT_DOUBLE_EQ(SqnrDb(100.0, 1.0), 20.0);
  EXPECT_TRUE(std::isinf(SqnrDb(1.0, 0.0)));
  EXPECT_EQ(SqnrDb(0.0, 0.0), 0.0);
}

TensorView FloatView(const std::vector<float>& v, std::vector<int64_t> shape) {
  return TensorView(DType::kFloat32, std::move(shape), reinterpret_cast<const std::byte*>(v.data()),
                    static_cast<int64_t>(v.size()), sizeof(float), Storage::kRaw);
}

TEST(QuantWeight, PerChannelHandDerived) {
  // Channel 0: max |w| 63.5 -> scale 0.5: 63.5 -> 127, -1.25 -> -2.5 -> -2, 0 -> 0, 0.75 -> 1.5 -> 2.
  // Channel 1: max |w| 127 -> scale 1: 0.5 -> 0, -3.5 -> -4.
  const std::vector<float> w = {63.5f, -1.25f, 0.0f, 0.75f, 127.0f, 0.5f, -3.5f, 0.0f};
  auto q = QuantizeWeight(FloatView(w, {2, 4}), 0);
  ASSERT_TRUE(q.ok()) << q.status().message();
  ASSERT_EQ(q->scales.size(), 2u);
  EXPECT_EQ(q->scales[0], 0.5f);
  EXPECT_EQ(q->scales[1], 1.0f);
  EXPECT_EQ(q->values, (std::vector<int8_t>{127, -2, 0, 2, 127, 0, -4, 0}));
  EXPECT_EQ(q->zeros_before, 2);
  EXPECT_EQ(q->zeros_after, 3);
  // Noise: channel 0 (-1.25 vs -1.0, 0.75 vs 1.0), channel 1 (0.5 vs 0, -3.5 vs -4).
  EXPECT_DOUBLE_EQ(q->noise_energy, 0.0625 + 0.0625 + 0.25 + 0.25);
}

TEST(QuantWeight, OutputAxisOneAndPerTensor) {
  // A MatMul/Gemm(transB=0) weight [in=2, out=3]: channels are columns.
  const std::vector<float> w = {1.0f, -2.0f, 63.5f, 127.0f, 0.0f, -1.25f};
  auto q = QuantizeWeight(FloatView(w, {2, 3}), 1);
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->scales.size(), 3u);
  EXPECT_EQ(q->scales[0], 1.0f);
  EXPECT_FLOAT_EQ(q->scales[1], 2.0f / 127.0f);
  EXPECT_EQ(q->scales[2], 0.5f);
  EXPECT_EQ(q->values[3], 127);   // column 0
  EXPECT_EQ(q->values[1], -127);  // column 1
  EXPECT_EQ(q->values[5], -2);    // column 2: -1.25 / 0.5 = -2.5 -> -2
  auto t = QuantizeWeight(FloatView(w, {2, 3}), -1);
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->scales.size(), 1u);
  EXPECT_EQ(t->scales[0], 1.0f);
  EXPECT_EQ(t->values, (std::vector<int8_t>{1, -2, 64, 127, 0, -1}));  // 63.5 -> 64, -1.25 -> -1
}

TEST(QuantWeight, ZerosAndTwoOfFourSurvive) {
  // A 2:4 Gemm weight [8 out, 16 in] (groups along axis 1).
  std::vector<float> w(8 * 16);
  for (size_t i = 0; i < w.size(); ++i) {
    const bool kept = (i % 4) == (i / 16) % 4 || (i % 4) == ((i / 16) + 1) % 4;
    w[i] = kept ? std::sin(static_cast<float>(i)) * 3.0f + 0.01f : 0.0f;
  }
  ASSERT_TRUE(CheckNM(FloatView(w, {8, 16}), 1, 2, 4).compliant());
  for (int axis : {0, -1}) {
    auto q = QuantizeWeight(FloatView(w, {8, 16}), axis);
    ASSERT_TRUE(q.ok());
    for (size_t i = 0; i < w.size(); ++i) {
      if (w[i] == 0.0f) {
        EXPECT_EQ(q->values[i], 0) << i;
      }
    }
    TensorView qv(DType::kInt8, {8, 16}, reinterpret_cast<const std::byte*>(q->values.data()), 128, 1, Storage::kRaw);
    EXPECT_TRUE(CheckNM(qv, 1, 2, 4).compliant());
    EXPECT_GE(q->zeros_after, q->zeros_before);
    EXPECT_EQ(q->zeros_before, 64);
  }
}

TEST(QuantWeight, LargeWeightsMatchTheScalarReference) {
  // Enough rows for the memory-order path (parts of whole rows), with ties at
  // .5 steps and exact zeros: every value must equal QuantizeValue with the
  // channel's scale, and the totals must match, on 1 and 2 threads alike.
  const int64_t rows = 300, cols = 37;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < w.size(); ++i) {
    w[i] = (i % 11 == 0) ? 0.0f : std::sin(static_cast<float>(i) * 0.37f) * static_cast<float>(1 + i % 7);
    if (i % 13 == 0) w[i] = std::round(w[i] * 4.0f) / 4.0f + 0.5f;
  }
  for (int axis : {1, 0, -1}) {
    auto channel_of = [&](size_t i) -> size_t { return axis == 1 ? i % cols : axis == 0 ? i / cols : 0; };
    std::vector<float> absmax(axis == 1 ? cols : axis == 0 ? rows : 1, 0.0f);
    for (size_t i = 0; i < w.size(); ++i) absmax[channel_of(i)] = std::max(absmax[channel_of(i)], std::abs(w[i]));
    auto one = QuantizeWeight(FloatView(w, {rows, cols}), axis, 1);
    auto two = QuantizeWeight(FloatView(w, {rows, cols}), axis, 2);
    ASSERT_TRUE(one.ok() && two.ok());
    EXPECT_EQ(one->values, two->values);
    EXPECT_EQ(one->scales, two->scales);
    EXPECT_EQ(one->noise_energy, two->noise_energy);
    int64_t zeros = 0;
    double noise = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const float m = absmax[channel_of(i)];
      const QuantParams p = ComputeParams(-m, m, Scheme::kInt8Symmetric);
      ASSERT_EQ(one->scales[channel_of(i)], p.scale);
      const int32_t ref = QuantizeValue(w[i], p, Scheme::kInt8Symmetric);
      ASSERT_EQ(one->values[i], ref) << "axis " << axis << " element " << i << " value " << w[i];
      zeros += ref == 0;
      noise += std::pow(static_cast<double>(w[i]) - DequantizeValue(ref, p), 2);
    }
    EXPECT_EQ(one->zeros_after, zeros);
    EXPECT_NEAR(one->noise_energy, noise, 1e-9 * noise);
  }
  // NaN quantizes to the zero point, infinities saturate, on the same path.
  w[5 * cols + 2] = std::numeric_limits<float>::quiet_NaN();
  w[7 * cols + 3] = std::numeric_limits<float>::infinity();
  w[9 * cols + 3] = -std::numeric_limits<float>::infinity();
  auto q = QuantizeWeight(FloatView(w, {rows, cols}), 1, 2);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->values[5 * cols + 2], 0);
  EXPECT_EQ(q->values[7 * cols + 3], 127);
  EXPECT_EQ(q->values[9 * cols + 3], -127);
}

TEST(QuantWeight, AllZeroChannelAndBadType) {
  const std::vector<float> w = {0, 0, 0, 1, 2, 3};
  auto q = QuantizeWeight(FloatView(w, {2, 3}), 0);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->scales[0], 1.0f);  // the scale floor
  EXPECT_EQ(q->values[0], 0);
  const std::vector<int32_t> ints = {1, 2};
  TensorView iv(DType::kInt32, {2}, reinterpret_cast<const std::byte*>(ints.data()), 2, 4, Storage::kRaw);
  EXPECT_FALSE(QuantizeWeight(iv, -1).ok());
}

}  // namespace
}  // namespace modelpress::quant
