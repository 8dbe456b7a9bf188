#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "modelpress/tensor.h"

namespace modelpress {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The value of a binary16 pattern from the IEEE 754 definition.
double RefHalf(uint16_t h) {
  const double sign = (h & 0x8000) ? -1.0 : 1.0;
  const int e = (h >> 10) & 0x1f;
  const int m = h & 0x3ff;
  if (e == 0x1f) return m ? std::numeric_limits<double>::quiet_NaN() : sign * kInf;
  if (e == 0) return sign * std::ldexp(m / 1024.0, -14);
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

// The value of a bfloat16 pattern: 8 exponent bits (bias 127), 7 mantissa bits.
double RefBfloat16(uint16_t b) {
  const double sign = (b & 0x8000) ? -1.0 : 1.0;
  const int e = (b >> 7) & 0xff;
  const int m = b & 0x7f;
  if (e == 0xff) return m ? std::numeric_limits<double>::quiet_NaN() : sign * kInf;
  if (e == 0) return sign * std::ldexp(m / 128.0, -126);
  return sign * std::ldexp(1.0 + m / 128.0, e - 127);
}

bool IsHalfNaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }
bool IsBfloat16NaN(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }

// Round-to-nearest-even into a narrow format, by searching the sorted table of
// its non-negative finite values. The pattern after the largest finite one is
// infinity; for rounding it counts as the next power of two, as IEEE 754 says.
class NarrowReference {
 public:
  NarrowReference(double (*decode)(uint16_t), uint16_t inf_bits, double inf_as) : inf_bits_(inf_bits) {
    for (uint32_t b = 0; b < inf_bits; ++b) values_.push_back(decode(static_cast<uint16_t>(b)));
    values_.push_back(inf_as);
  }

  uint16_t Round(float f) const {
    const double a = std::fabs(static_cast<double>(f));
    const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
    if (a >= values_.back()) return sign | inf_bits_;
    const size_t hi = std::lower_bound(values_.begin(), values_.end(), a) - values_.begin();
    if (values_[hi] == a || hi == 0) return sign | static_cast<uint16_t>(hi);
    const size_t lo = hi - 1;
    const double below = a - values_[lo], above = values_[hi] - a;
    size_t pick = below < above ? lo : hi;
    if (below == above) pick = (lo % 2 == 0) ? lo : hi;
    return sign | static_cast<uint16_t>(pick);
  }

 private:
  std::vector<double> values_;
  uint16_t inf_bits_;
};

float FromBits(uint32_t b) { return std::bit_cast<float>(b); }

// Float bit patterns that exercise every exponent and the bits a narrowing
// conversion drops around each rounding boundary, plus random patterns.
std::vector<uint32_t> FloatSweep(int dropped_bits) {
  const uint32_t half_ulp = 1u << (dropped_bits - 1);
  const uint32_t low_mask = (1u << dropped_bits) - 1;
  const uint32_t lows[] = {0, 1, half_ulp - 1, half_ulp, half_ulp + 1, low_mask};
  std::vector<uint32_t> out;
  for (uint64_t top = 0; top < (1ull << (32 - dropped_bits)); ++top) {
    for (uint32_t low : lows) out.push_back(static_cast<uint32_t>(top << dropped_bits) | low);
  }
  std::mt19937 rng(20240531);
  for (int i = 0; i < 200000; ++i) out.push_back(static_cast<uint32_t>(rng()));
  return out;
}

TEST(DTypeTest, SizesFollowOnnxTypes) {
  struct Case {
    DType type;
    size_t size;
  };
  const Case cases[] = {
      {DType::kUndefined, 0}, {DType::kFloat32, 4},    {DType::kUint8, 1},          {DType::kInt8, 1},
      {DType::kUint16, 2},    {DType::kInt16, 2},      {DType::kInt32, 4},          {DType::kInt64, 8},
      {DType::kString, 0},    {DType::kBool, 1},       {DType::kFloat16, 2},        {DType::kFloat64, 8},
      {DType::kUint32, 4},    {DType::kUint64, 8},     {DType::kComplex64, 8},      {DType::kComplex128, 16},
      {DType::kBfloat16, 2},  {DType::kFloat8E4M3FN, 1}, {DType::kFloat8E4M3FNUZ, 1}, {DType::kFloat8E5M2, 1},
      {DType::kFloat8E5M2FNUZ, 1},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(DTypeSize(c.type), c.size) << static_cast<int>(c.type);
    EXPECT_EQ(DTypeSize(static_cast<int32_t>(c.type)), c.size) << static_cast<int>(c.type);
  }
  // 21..23 are ONNX's 4-bit types; 999 and -1 are not types at all.
  for (int32_t unknown : {21, 22, 23, 999, -1}) EXPECT_EQ(DTypeSize(unknown), 0u) << unknown;
}

TEST(DTypeTest, NamesFollowOnnxTypes) {
  EXPECT_EQ(DTypeName(DType::kUndefined), "undefined");
  EXPECT_EQ(DTypeName(DType::kFloat32), "float32");
  EXPECT_EQ(DTypeName(DType::kUint8), "uint8");
  EXPECT_EQ(DTypeName(DType::kInt8), "int8");
  EXPECT_EQ(DTypeName(DType::kUint16), "uint16");
  EXPECT_EQ(DTypeName(DType::kInt16), "int16");
  EXPECT_EQ(DTypeName(DType::kInt32), "int32");
  EXPECT_EQ(DTypeName(DType::kInt64), "int64");
  EXPECT_EQ(DTypeName(DType::kString), "string");
  EXPECT_EQ(DTypeName(DType::kBool), "bool");
  EXPECT_EQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(DTypeName(DType::kFloat64), "float64");
  EXPECT_EQ(DTypeName(DType::kUint32), "uint32");
  EXPECT_EQ(DTypeName(DType::kUint64), "uint64");
  EXPECT_EQ(DTypeName(DType::kComplex64), "complex64");
  EXPECT_EQ(DTypeName(DType::kComplex128), "complex128");
  EXPECT_EQ(DTypeName(DType::kBfloat16), "bfloat16");
  EXPECT_EQ(DTypeName(DType::kFloat8E4M3FN), "float8e4m3fn");
  EXPECT_EQ(DTypeName(DType::kFloat8E4M3FNUZ), "float8e4m3fnuz");
  EXPECT_EQ(DTypeName(DType::kFloat8E5M2), "float8e5m2");
  EXPECT_EQ(DTypeName(DType::kFloat8E5M2FNUZ), "float8e5m2fnuz");
  EXPECT_EQ(DTypeName(42), "type42");
  EXPECT_EQ(DTypeName(-3), "type-3");
}

TEST(DTypeTest, FloatingPointTypes) {
  for (int32_t t = 0; t <= 20; ++t) {
    const DType d = static_cast<DType>(t);
    const bool expected =
        d == DType::kFloat32 || d == DType::kFloat16 || d == DType::kBfloat16 || d == DType::kFloat64;
    EXPECT_EQ(IsFloatingPoint(d), expected) << DTypeName(t);
  }
}

TEST(HalfTest, HalfToFloatMatchesDefinitionForEveryPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const float got = HalfToFloat(static_cast<uint16_t>(h));
    const double want = RefHalf(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << h;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << std::hex << h;
    }
    EXPECT_EQ(std::signbit(got), (h & 0x8000) != 0) << std::hex << h;
  }
}

TEST(HalfTest, RoundTripIsIdentityForEveryNonNaNPattern) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    if (IsHalfNaN(static_cast<uint16_t>(h))) continue;
    EXPECT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << std::hex << h;
  }
}

TEST(HalfTest, NaNStaysNaN) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    if (!IsHalfNaN(static_cast<uint16_t>(h))) continue;
    EXPECT_TRUE(IsHalfNaN(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))))) << std::hex << h;
  }
  // Payloads only in the low float bits would truncate to infinity.
  for (uint32_t f : {0x7f800001u, 0xff800001u, 0x7fc00000u, 0x7fffffffu, 0x7f801fffu}) {
    EXPECT_TRUE(IsHalfNaN(FloatToHalf(FromBits(f)))) << std::hex << f;
  }
}

TEST(HalfTest, RoundsHalfwayCasesToEven) {
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);      // between 0x3c00 and 0x3c01
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // between 0x3c01 and 0x3c02
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3c01);
  EXPECT_EQ(FloatToHalf(std::nextafter(1.0f + 3 * std::ldexp(1.0f, -11), 0.0f)), 0x3c01);
  EXPECT_EQ(FloatToHalf(-(1.0f + std::ldexp(1.0f, -11))), 0xbc00);
  // 2047.5 .. 2048 region: ulp is 1, so 2047.5 is a tie between 2047 (odd) and 2048.
  EXPECT_EQ(HalfToFloat(FloatToHalf(2047.5f)), 2048.0f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(2046.5f)), 2046.0f);
}

TEST(HalfTest, OverflowsToInfinityFrom65520) {
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(HalfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(FloatToHalf(std::nextafter(65520.0f, 0.0f)), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-65520.0f), 0xfc00);
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::max()), 0x7c00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(-std::numeric_limits<float>::infinity()), 0xfc00);
}

TEST(HalfTest, RoundsIntoSubnormals) {
  const float tiny = std::ldexp(1.0f, -24);  // smallest positive half
  EXPECT_EQ(FloatToHalf(tiny), 0x0001);
  EXPECT_EQ(FloatToHalf(tiny / 2), 0x0000);  // tie between 0 and 1
  EXPECT_EQ(FloatToHalf(-tiny / 2), 0x8000);
  EXPECT_EQ(FloatToHalf(std::nextafter(tiny / 2, 1.0f)), 0x0001);
  EXPECT_EQ(FloatToHalf(3 * tiny / 2), 0x0002);  // tie between 1 and 2
  EXPECT_EQ(FloatToHalf(5 * tiny / 2), 0x0002);  // tie between 2 and 3
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14) - tiny / 2), 0x0400);  // tie between 0x3ff and the smallest normal
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(HalfTest, FloatToHalfMatchesNearestEvenReference) {
  const NarrowReference ref(RefHalf, 0x7c00, 65536.0);
  for (uint32_t bits : FloatSweep(13)) {
    const float f = FromBits(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), ref.Round(f)) << std::hex << bits;
  }
}

TEST(Bfloat16Test, ToFloatMatchesDefinitionForEveryPattern) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float got = Bfloat16ToFloat(static_cast<uint16_t>(b));
    const double want = RefBfloat16(static_cast<uint16_t>(b));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << std::hex << b;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << std::hex << b;
    }
    EXPECT_EQ(std::signbit(got), (b & 0x8000) != 0) << std::hex << b;
  }
}

TEST(Bfloat16Test, RoundTripIsIdentityForEveryNonNaNPattern) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    if (IsBfloat16NaN(static_cast<uint16_t>(b))) continue;
    EXPECT_EQ(FloatToBfloat16(Bfloat16ToFloat(static_cast<uint16_t>(b))), b) << std::hex << b;
  }
}

TEST(Bfloat16Test, NaNStaysNaN) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    if (!IsBfloat16NaN(static_cast<uint16_t>(b))) continue;
    EXPECT_TRUE(IsBfloat16NaN(FloatToBfloat16(Bfloat16ToFloat(static_cast<uint16_t>(b))))) << std::hex << b;
  }
  for (uint32_t f : {0x7f800001u, 0xff800001u, 0x7f80ffffu, 0x7fffffffu, 0xffc00000u}) {
    EXPECT_TRUE(IsBfloat16NaN(FloatToBfloat16(FromBits(f)))) << std::hex << f;
  }
}

TEST(Bfloat16Test, RoundsHalfwayCasesToEven) {
  EXPECT_EQ(FloatToBfloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(FloatToBfloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(FloatToBfloat16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  EXPECT_EQ(FloatToBfloat16(-(1.0f + 3 * std::ldexp(1.0f, -8))), 0xbf82);
  EXPECT_EQ(FloatToBfloat16(FromBits(0x00008000u)), 0x0000);  // subnormal tie down to zero
  EXPECT_EQ(FloatToBfloat16(FromBits(0x00018000u)), 0x0002);  // subnormal tie up to even
}

TEST(Bfloat16Test, OverflowsToInfinityAtTheMidpointAboveMax) {
  // Largest finite bfloat16 is 0x7f7f; the midpoint to 2^128 ties to the even neighbour, infinity.
  EXPECT_EQ(FloatToBfloat16(FromBits(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(FloatToBfloat16(FromBits(0x7f7f8000u)), 0x7f80);
  EXPECT_EQ(FloatToBfloat16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(FloatToBfloat16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(FloatToBfloat16(std::numeric_limits<float>::infinity()), 0x7f80);
}

TEST(Bfloat16Test, FloatToBfloat16MatchesNearestEvenReference) {
  const NarrowReference ref(RefBfloat16, 0x7f80, std::ldexp(1.0, 128));
  for (uint32_t bits : FloatSweep(16)) {
    const float f = FromBits(bits);
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBfloat16(f), ref.Round(f)) << std::hex << bits;
  }
}

TEST(ElementCountTest, ProductOfDims) {
  const std::vector<int64_t> dims = {2, 3, 4};
  EXPECT_EQ(ElementCount(dims), 24);
  EXPECT_EQ(ElementCount(std::vector<int64_t>{7}), 7);
}

TEST(ElementCountTest, ScalarHasOneElement) { EXPECT_EQ(ElementCount(std::span<const int64_t>{}), 1); }

TEST(ElementCountTest, ZeroDimGivesZero) {
  EXPECT_EQ(ElementCount(std::vector<int64_t>{0}), 0);
  EXPECT_EQ(ElementCount(std::vector<int64_t>{3, 0, 5}), 0);
  EXPECT_EQ(ElementCount(std::vector<int64_t>{0, int64_t{1} << 62, 4}), 0);
}

TEST(ElementCountTest, NegativeDimIsRejected) {
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{-1}).has_value());
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{2, -3, 4}).has_value());
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{0, -1}).has_value());
}

TEST(ElementCountTest, OverflowIsRejected) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(ElementCount(std::vector<int64_t>{kMax}), kMax);
  EXPECT_EQ(ElementCount(std::vector<int64_t>{int64_t{1} << 31, int64_t{1} << 31}), int64_t{1} << 62);
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{int64_t{1} << 32, int64_t{1} << 31}).has_value());
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{kMax, 2}).has_value());
  // floor(sqrt(2^63 - 1)) = 3037000499.
  EXPECT_EQ(ElementCount(std::vector<int64_t>{3037000499, 3037000499}), int64_t{3037000499} * 3037000499);
  EXPECT_FALSE(ElementCount(std::vector<int64_t>{3037000500, 3037000500}).has_value());
}

}  // namespace
}  // namespace modelpress
