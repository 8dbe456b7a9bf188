#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>
#include <vector>

#include "modelpress/tensor.h"

namespace modelpress {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class T>
const std::byte* Bytes(const std::vector<T>& v) {
  return reinterpret_cast<const std::byte*>(v.data());
}

// A view of `v` as packed elements of `dtype`, as raw_data would give it.
template <class T>
TensorView Packed(DType dtype, const std::vector<T>& v) {
  return TensorView(dtype, {static_cast<int64_t>(v.size())}, Bytes(v), static_cast<int64_t>(v.size()), sizeof(T),
                    Storage::kRaw);
}

// A view of elements of `dtype` held in the low bytes of the wider slots of
// `slots`, as ONNX's int32_data and uint64_data hold narrow types.
template <class Slot>
TensorView Widened(DType dtype, const std::vector<Slot>& slots) {
  return TensorView(dtype, {static_cast<int64_t>(slots.size())}, Bytes(slots), static_cast<int64_t>(slots.size()),
                    sizeof(Slot), Storage::kTyped);
}

template <class T>
std::vector<T> Unpack(const std::vector<std::byte>& bytes) {
  std::vector<T> out(bytes.size() / sizeof(T));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(T));
  return out;
}

std::vector<std::byte> CopyPacked(const TensorView& v) {
  std::vector<std::byte> out(v.packed_bytes());
  v.CopyPackedTo(out);
  return out;
}

TEST(TensorViewTest, ContiguousFloat32) {
  const std::vector<float> data = {1.5f, -2.0f, 0.0f, -0.0f, kNaN, 1e-45f};
  const TensorView v(DType::kFloat32, {2, 3}, Bytes(data), 6, 4, Storage::kRaw);
  EXPECT_EQ(v.dtype(), DType::kFloat32);
  EXPECT_EQ(v.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(v.size(), 6);
  EXPECT_EQ(v.element_size(), 4u);
  EXPECT_EQ(v.packed_bytes(), 24u);
  EXPECT_TRUE(v.contiguous());
  ASSERT_EQ(v.bytes().size(), 24u);
  EXPECT_EQ(v.bytes().data(), Bytes(data));
  EXPECT_EQ(v.AsDouble(0), 1.5);
  EXPECT_EQ(v.AsDouble(1), -2.0);
  EXPECT_TRUE(std::isnan(v.AsDouble(4)));
  EXPECT_EQ(v.AsDouble(5), static_cast<double>(1e-45f));
}

TEST(TensorViewTest, SpanOnlyForMatchingElementSize) {
  const std::vector<float> data = {1.0f, 2.0f, 3.0f};
  const TensorView v = Packed(DType::kFloat32, data);
  const auto floats = v.span<float>();
  ASSERT_EQ(floats.size(), 3u);
  EXPECT_EQ(floats.data(), data.data());
  EXPECT_EQ(floats[2], 3.0f);
  EXPECT_EQ(v.span<uint32_t>().size(), 3u);  // same size, so a bit view is allowed
  EXPECT_TRUE(v.span<double>().empty());
  EXPECT_TRUE(v.span<uint16_t>().empty());
}

TEST(TensorViewTest, IsZeroFloat32) {
  const std::vector<float> data = {0.0f, -0.0f, kNaN, -kNaN, 1e-45f, -1e-45f, std::numeric_limits<float>::infinity()};
  const TensorView v = Packed(DType::kFloat32, data);
  const bool expected[] = {true, true, false, false, false, false, false};
  for (int64_t i = 0; i < v.size(); ++i) EXPECT_EQ(v.IsZero(i), expected[i]) << i;
}

TEST(TensorViewTest, IsZeroFloat64AndHalfTypes) {
  const std::vector<double> d = {0.0, -0.0, 5e-324, std::nan("")};
  const TensorView vd = Packed(DType::kFloat64, d);
  EXPECT_TRUE(vd.IsZero(0));
  EXPECT_TRUE(vd.IsZero(1));
  EXPECT_FALSE(vd.IsZero(2));
  EXPECT_FALSE(vd.IsZero(3));

  // Half: +0, -0, smallest subnormal, NaN. Bfloat16: +0, -0, smallest subnormal, 1.0.
  const std::vector<uint16_t> h = {0x0000, 0x8000, 0x0001, 0x7e00};
  const TensorView vh = Packed(DType::kFloat16, h);
  const std::vector<uint16_t> b = {0x0000, 0x8000, 0x0001, 0x3f80};
  const TensorView vb = Packed(DType::kBfloat16, b);
  for (const TensorView* v : {&vh, &vb}) {
    EXPECT_TRUE(v->IsZero(0));
    EXPECT_TRUE(v->IsZero(1));
    EXPECT_FALSE(v->IsZero(2));
    EXPECT_FALSE(v->IsZero(3));
  }
  EXPECT_EQ(vb.AsDouble(3), 1.0);
  EXPECT_EQ(vh.AsDouble(2), std::ldexp(1.0, -24));
}

TEST(TensorViewTest, IsZeroFloat8) {
  // E4M3FN and E5M2 have a negative zero 0x80; the FNUZ variants use 0x80 for NaN.
  const std::vector<uint8_t> data = {0x00, 0x80, 0x01, 0x7f};
  for (DType t : {DType::kFloat8E4M3FN, DType::kFloat8E5M2}) {
    const TensorView v = Packed(t, data);
    EXPECT_TRUE(v.IsZero(0));
    EXPECT_TRUE(v.IsZero(1));
    EXPECT_FALSE(v.IsZero(2));
    EXPECT_FALSE(v.IsZero(3));
    EXPECT_TRUE(std::isnan(v.AsDouble(2)));
  }
  for (DType t : {DType::kFloat8E4M3FNUZ, DType::kFloat8E5M2FNUZ}) {
    const TensorView v = Packed(t, data);
    EXPECT_TRUE(v.IsZero(0));
    EXPECT_FALSE(v.IsZero(1));
    EXPECT_FALSE(v.IsZero(2));
  }
}

TEST(TensorViewTest, IsZeroComplex) {
  using C64 = std::complex<float>;
  const std::vector<C64> c = {{0.0f, 0.0f}, {-0.0f, -0.0f}, {0.0f, 1e-45f}, {1.0f, 0.0f}, {kNaN, 0.0f}};
  const TensorView v = Packed(DType::kComplex64, c);
  EXPECT_EQ(v.element_size(), 8u);
  EXPECT_TRUE(v.IsZero(0));
  EXPECT_TRUE(v.IsZero(1));
  EXPECT_FALSE(v.IsZero(2));
  EXPECT_FALSE(v.IsZero(3));
  EXPECT_FALSE(v.IsZero(4));
  EXPECT_TRUE(std::isnan(v.AsDouble(0)));

  using C128 = std::complex<double>;
  const std::vector<C128> z = {{0.0, -0.0}, {0.0, 5e-324}, {1.0, 0.0}};
  const TensorView vz = Packed(DType::kComplex128, z);
  EXPECT_EQ(vz.element_size(), 16u);
  EXPECT_TRUE(vz.IsZero(0));
  EXPECT_FALSE(vz.IsZero(1));
  EXPECT_FALSE(vz.IsZero(2));
}

TEST(TensorViewTest, AsDoubleIntegers) {
  const std::vector<int64_t> i64 = {int64_t{1} << 53, -5, std::numeric_limits<int64_t>::min()};
  const TensorView v64 = Packed(DType::kInt64, i64);
  EXPECT_EQ(v64.AsDouble(0), 9007199254740992.0);
  EXPECT_EQ(v64.AsDouble(1), -5.0);
  EXPECT_EQ(v64.AsDouble(2), -std::ldexp(1.0, 63));

  const std::vector<uint64_t> u64 = {std::numeric_limits<uint64_t>::max(), 3};
  const TensorView vu64 = Packed(DType::kUint64, u64);
  EXPECT_EQ(vu64.AsDouble(0), std::ldexp(1.0, 64));  // 2^64 - 1 rounds to 2^64
  EXPECT_EQ(vu64.AsDouble(1), 3.0);

  const std::vector<int16_t> i16 = {-32768, 32767};
  EXPECT_EQ(Packed(DType::kInt16, i16).AsDouble(0), -32768.0);
  const std::vector<uint16_t> u16 = {65535};
  EXPECT_EQ(Packed(DType::kUint16, u16).AsDouble(0), 65535.0);
  const std::vector<uint8_t> u8 = {255, 0};
  EXPECT_EQ(Packed(DType::kUint8, u8).AsDouble(0), 255.0);
  const std::vector<int8_t> i8 = {-128};
  EXPECT_EQ(Packed(DType::kInt8, i8).AsDouble(0), -128.0);
}

TEST(TensorViewTest, BitsAreTheElementZeroExtended) {
  const std::vector<int8_t> i8 = {-1, 5};
  const TensorView v8 = Packed(DType::kInt8, i8);
  EXPECT_EQ(v8.bits(0), 0xffu);
  EXPECT_EQ(v8.bits(1), 5u);
  const std::vector<float> f = {-1.0f};
  EXPECT_EQ(Packed(DType::kFloat32, f).bits(0), 0xbf800000u);
  const std::vector<int64_t> i64 = {-2};
  EXPECT_EQ(Packed(DType::kInt64, i64).bits(0), 0xfffffffffffffffeull);
}

TEST(TensorViewTest, Float16InInt32Slots) {
  // The high half of each slot is ignored: only the low-order bytes are the element.
  const std::vector<uint16_t> halves = {0x3c00, 0xc000, 0x8000, 0x7e00, 0x0001};
  std::vector<uint32_t> slots;
  for (uint16_t h : halves) slots.push_back(0xabcd0000u | h);
  const TensorView v = Widened(DType::kFloat16, slots);
  EXPECT_EQ(v.stride(), 4u);
  EXPECT_EQ(v.element_size(), 2u);
  EXPECT_EQ(v.packed_bytes(), 10u);
  EXPECT_EQ(v.storage(), Storage::kTyped);
  EXPECT_FALSE(v.contiguous());
  EXPECT_TRUE(v.bytes().empty());
  EXPECT_TRUE(v.span<uint16_t>().empty());
  EXPECT_TRUE(v.span<uint32_t>().empty());
  for (int64_t i = 0; i < v.size(); ++i) EXPECT_EQ(v.bits(i), halves[i]) << i;
  EXPECT_EQ(v.AsDouble(0), 1.0);
  EXPECT_EQ(v.AsDouble(1), -2.0);
  EXPECT_TRUE(std::isnan(v.AsDouble(3)));
  EXPECT_EQ(v.AsDouble(4), std::ldexp(1.0, -24));
  EXPECT_FALSE(v.IsZero(0));
  EXPECT_TRUE(v.IsZero(2));
  EXPECT_FALSE(v.IsZero(3));
  EXPECT_EQ(Unpack<uint16_t>(CopyPacked(v)), halves);
}

TEST(TensorViewTest, Int8SignExtendedInInt32Slots) {
  const std::vector<int8_t> values = {-128, -1, 0, 1, 127};
  const std::vector<int32_t> slots(values.begin(), values.end());
  const TensorView v = Widened(DType::kInt8, slots);
  EXPECT_FALSE(v.contiguous());
  for (int64_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v.AsDouble(i), values[i]) << i;
    EXPECT_EQ(v.IsZero(i), values[i] == 0) << i;
    EXPECT_EQ(v.bits(i), static_cast<uint8_t>(values[i])) << i;
  }
  EXPECT_EQ(Unpack<int8_t>(CopyPacked(v)), values);
}

TEST(TensorViewTest, Int16AndUint8InInt32Slots) {
  const std::vector<int32_t> i16_slots = {-32768, -2, 0, 32767};
  const TensorView v16 = Widened(DType::kInt16, i16_slots);
  for (int64_t i = 0; i < v16.size(); ++i) EXPECT_EQ(v16.AsDouble(i), i16_slots[i]) << i;
  const std::vector<int32_t> u8_slots = {255, 0, 128};
  const TensorView vu8 = Widened(DType::kUint8, u8_slots);
  EXPECT_EQ(Unpack<uint8_t>(CopyPacked(vu8)), (std::vector<uint8_t>{255, 0, 128}));
  EXPECT_EQ(vu8.AsDouble(0), 255.0);
  EXPECT_TRUE(vu8.IsZero(1));
}

TEST(TensorViewTest, BoolInInt32Slots) {
  const std::vector<int32_t> slots = {1, 0, 1, 0};
  const TensorView v = Widened(DType::kBool, slots);
  EXPECT_EQ(v.element_size(), 1u);
  for (int64_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v.AsDouble(i), slots[i] ? 1.0 : 0.0) << i;
    EXPECT_EQ(v.IsZero(i), slots[i] == 0) << i;
  }
  EXPECT_EQ(Unpack<uint8_t>(CopyPacked(v)), (std::vector<uint8_t>{1, 0, 1, 0}));
}

TEST(TensorViewTest, Uint32InUint64Slots) {
  const std::vector<uint64_t> slots = {0xffffffffull, 7, 0};
  const TensorView v = Widened(DType::kUint32, slots);
  EXPECT_EQ(v.stride(), 8u);
  EXPECT_FALSE(v.contiguous());
  EXPECT_EQ(v.AsDouble(0), 4294967295.0);
  EXPECT_EQ(v.AsDouble(1), 7.0);
  EXPECT_TRUE(v.IsZero(2));
  EXPECT_EQ(v.bits(0), 0xffffffffu);
  EXPECT_EQ(Unpack<uint32_t>(CopyPacked(v)), (std::vector<uint32_t>{0xffffffffu, 7, 0}));
}

TEST(TensorViewTest, CopyPackedToContiguous) {
  const std::vector<int32_t> data = {-7, 0, 123456789};
  const TensorView v = Packed(DType::kInt32, data);
  EXPECT_EQ(Unpack<int32_t>(CopyPacked(v)), data);
}

TEST(TensorViewTest, EmptyView) {
  const TensorView v(DType::kFloat32, {0, 4}, nullptr, 0, 4, Storage::kRaw);
  EXPECT_EQ(v.size(), 0);
  EXPECT_EQ(v.packed_bytes(), 0u);
  EXPECT_TRUE(v.span<float>().empty());
  std::vector<std::byte> out;
  v.CopyPackedTo(out);
}

TEST(MutableTensorViewTest, SpanWritesThroughAndViewSeesIt) {
  std::vector<float> storage(6, 0.0f);
  const MutableTensorView m{DType::kFloat32, {2, 3}, std::as_writable_bytes(std::span(storage))};
  EXPECT_EQ(m.size(), 6);
  auto s = m.span<float>();
  ASSERT_EQ(s.size(), 6u);
  s[4] = 2.5f;
  EXPECT_EQ(storage[4], 2.5f);
  EXPECT_TRUE(m.span<double>().empty());
  EXPECT_TRUE(m.span<uint16_t>().empty());

  const TensorView v = m.view();
  EXPECT_EQ(v.dtype(), DType::kFloat32);
  EXPECT_EQ(v.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(v.size(), 6);
  EXPECT_TRUE(v.contiguous());
  EXPECT_EQ(v.storage(), Storage::kRaw);
  EXPECT_EQ(v.AsDouble(4), 2.5);
  EXPECT_TRUE(v.IsZero(0));
}

TEST(MutableTensorViewTest, SizeCountsElementsNotBytes) {
  std::vector<uint16_t> storage = {0x3c00, 0x4000, 0x4200, 0x4400};
  const MutableTensorView m{DType::kFloat16, {4}, std::as_writable_bytes(std::span(storage))};
  EXPECT_EQ(m.size(), 4);
  EXPECT_EQ(m.span<uint16_t>().size(), 4u);
  EXPECT_EQ(m.view().AsDouble(3), 4.0);
}

TEST(TensorTextTest, ShapeToString) {
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{3, 64, 7, 7}), "[3, 64, 7, 7]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{}), "[]");
  EXPECT_EQ(ShapeToString(std::vector<int64_t>{-1}), "[-1]");
}

TEST(TensorTextTest, StorageNamesAreDistinct) {
  const std::string_view raw = StorageName(Storage::kRaw), typed = StorageName(Storage::kTyped),
                         external = StorageName(Storage::kExternal);
  EXPECT_FALSE(raw.empty());
  EXPECT_FALSE(typed.empty());
  EXPECT_FALSE(external.empty());
  EXPECT_NE(raw, typed);
  EXPECT_NE(raw, external);
  EXPECT_NE(typed, external);
}

}  // namespace
}  // namespace modelpress
