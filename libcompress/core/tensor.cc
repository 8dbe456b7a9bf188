#include <cmath>
#include <limits>

#include "modelpress/tensor.h"

namespace modelpress {

std::string_view StorageName(Storage s) {
  switch (s) {
    case Storage::kRaw: return "raw";
    case Storage::kTyped: return "typed";
    case Storage::kExternal: return "external";
  }
  return "?";
}

double TensorView::AsDouble(int64_t i) const {
  const uint64_t b = bits(i);
  switch (dtype_) {
    case DType::kFloat32: return std::bit_cast<float>(static_cast<uint32_t>(b));
    case DType::kFloat64: return std::bit_cast<double>(b);
    case DType::kFloat16: return HalfToFloat(static_cast<uint16_t>(b));
    case DType::kBfloat16: return Bfloat16ToFloat(static_cast<uint16_t>(b));
    case DType::kInt8: return static_cast<int8_t>(b);
    case DType::kUint8: return static_cast<uint8_t>(b);
    case DType::kInt16: return static_cast<int16_t>(b);
    case DType::kUint16: return static_cast<uint16_t>(b);
    case DType::kInt32: return static_cast<int32_t>(b);
    case DType::kUint32: return static_cast<uint32_t>(b);
    case DType::kInt64: return static_cast<double>(static_cast<int64_t>(b));
    case DType::kUint64: return static_cast<double>(b);
    case DType::kBool: return (b & 0xffu) != 0 ? 1.0 : 0.0;
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

bool TensorView::IsZero(int64_t i) const {
  const uint64_t b = bits(i);
  switch (dtype_) {
    case DType::kFloat32: return (b & 0x7fffffffu) == 0;
    case DType::kFloat64: return (b & 0x7fffffffffffffffull) == 0;
    case DType::kFloat16: case DType::kBfloat16: return (b & 0x7fffu) == 0;
    case DType::kFloat8E4M3FN: case DType::kFloat8E5M2: return (b & 0x7fu) == 0;
    // The FNUZ formats have a single zero; 0x80 is their NaN.
    case DType::kFloat8E4M3FNUZ: case DType::kFloat8E5M2FNUZ: return b == 0;
    case DType::kComplex64: return (b & 0x7fffffff7fffffffull) == 0;
    case DType::kComplex128: {
      uint64_t hi = 0;
      std::memcpy(&hi, data_ + static_cast<size_t>(i) * stride_ + 8, 8);
      return (b << 1) == 0 && (hi << 1) == 0;
    }
    default: return b == 0;
  }
}

void TensorView::CopyPackedTo(std::span<std::byte> out) const {
  const size_t es = element_size();
  if (count_ == 0) return;  // an empty view may have no data pointer at all
  if (contiguous()) {
    std::memcpy(out.data(), data_, packed_bytes());
    return;
  }
  for (int64_t i = 0; i < count_; ++i) std::memcpy(out.data() + i * es, data_ + i * stride_, es);
}

std::string ShapeToString(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace modelpress
