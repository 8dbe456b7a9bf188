// Element types and typed, zero-copy views of tensor data.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modelpress/status.h"

namespace modelpress {

static_assert(std::endian::native == std::endian::little,
              "modelpress reads ONNX's little-endian tensor bytes in place");

// Values equal ONNX's TensorProto.DataType, so they can be cast either way.
enum class DType : int32_t {
  kUndefined = 0,
  kFloat32 = 1,
  kUint8 = 2,
  kInt8 = 3,
  kUint16 = 4,
  kInt16 = 5,
  kInt32 = 6,
  kInt64 = 7,
  kString = 8,
  kBool = 9,
  kFloat16 = 10,
  kFloat64 = 11,
  kUint32 = 12,
  kUint64 = 13,
  kComplex64 = 14,
  kComplex128 = 15,
  kBfloat16 = 16,
  kFloat8E4M3FN = 17,
  kFloat8E4M3FNUZ = 18,
  kFloat8E5M2 = 19,
  kFloat8E5M2FNUZ = 20,
};

// Bytes per element, or 0 for types without a fixed byte size (string,
// undefined, sub-byte and unknown codes).
size_t DTypeSize(int32_t onnx_type);
inline size_t DTypeSize(DType t) { return DTypeSize(static_cast<int32_t>(t)); }

// ONNX's name of the type, e.g. "float32", "bfloat16"; "type<N>" when unknown.
std::string DTypeName(int32_t onnx_type);
inline std::string DTypeName(DType t) { return DTypeName(static_cast<int32_t>(t)); }

// True for float32, float16, bfloat16 and float64.
bool IsFloatingPoint(DType t);

// IEEE binary16 and bfloat16 conversions. To-narrow conversions round to
// nearest, ties to even, and keep NaN a NaN.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float Bfloat16ToFloat(uint16_t b);
uint16_t FloatToBfloat16(float f);

// Number of elements of `dims`, or nullopt when a dimension is negative or the
// product overflows int64.
std::optional<int64_t> ElementCount(std::span<const int64_t> dims);

// Where a view's bytes live inside an ONNX TensorProto.
enum class Storage {
  kRaw,       // raw_data: packed little-endian elements
  kTyped,     // float_data, int32_data, int64_data, double_data or uint64_data
  kExternal,  // a memory-mapped external data file
};

std::string_view StorageName(Storage s);

// A read-only, typed view of `count` elements that start at `data` and lie
// `stride` bytes apart. Views are never copies: the bytes belong to the Model
// (or the TensorProto) they came from and stay valid while it lives and is not
// mutated. A stride larger than the element size happens where ONNX widens
// narrow types into a repeated field (float16 in int32_data, uint32 in
// uint64_data); the element is then the low-order bytes of each slot.
class TensorView {
 public:
  TensorView() = default;
  TensorView(DType dtype, std::vector<int64_t> shape, const std::byte* data, int64_t count, size_t stride,
             Storage storage)
      : dtype_(dtype), shape_(std::move(shape)), data_(data), count_(count), stride_(stride), storage_(storage) {}

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t size() const { return count_; }
  size_t element_size() const { return DTypeSize(dtype_); }
  size_t stride() const { return stride_; }
  Storage storage() const { return storage_; }
  // Bytes the elements occupy once packed (size() * element_size()).
  uint64_t packed_bytes() const { return static_cast<uint64_t>(count_) * element_size(); }

  // True when the elements are packed, so bytes() and span<T>() are valid.
  bool contiguous() const { return stride_ == element_size(); }

  // The packed bytes; only for contiguous views.
  std::span<const std::byte> bytes() const {
    return contiguous() ? std::span<const std::byte>(data_, packed_bytes()) : std::span<const std::byte>();
  }

  // The elements as T; only for contiguous views whose element size is sizeof(T).
  template <class T>
  std::span<const T> span() const {
    if (!contiguous() || sizeof(T) != element_size()) return {};
    return {reinterpret_cast<const T*>(data_), static_cast<size_t>(count_)};
  }

  // The first (up to) 8 bytes of element i as an integer, zero-extended.
  uint64_t bits(int64_t i) const {
    uint64_t v = 0;
    std::memcpy(&v, data_ + static_cast<size_t>(i) * stride_, element_size() < 8 ? element_size() : 8);
    return v;
  }

  // Element i converted to double (integers exactly up to 2^53; bool as 0/1).
  // Complex, string and 8-bit float types give NaN.
  double AsDouble(int64_t i) const;

  // True when element i is exactly zero (+0 or -0 for floating point).
  bool IsZero(int64_t i) const;

  // Copies the elements into `out` packed (out.size() must be packed_bytes()).
  void CopyPackedTo(std::span<std::byte> out) const;

 private:
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> shape_;
  const std::byte* data_ = nullptr;
  int64_t count_ = 0;
  size_t stride_ = 0;
  Storage storage_ = Storage::kRaw;
};

// A writable view of packed elements (what mutation of a weight works on).
struct MutableTensorView {
  DType dtype = DType::kUndefined;
  std::vector<int64_t> shape;
  std::span<std::byte> bytes;  // packed little-endian elements

  int64_t size() const { return static_cast<int64_t>(bytes.size() / DTypeSize(dtype)); }
  template <class T>
  std::span<T> span() const {
    if (sizeof(T) != DTypeSize(dtype)) return {};
    return {reinterpret_cast<T*>(bytes.data()), bytes.size() / sizeof(T)};
  }
  TensorView view() const {
    return {dtype, shape, bytes.data(), size(), DTypeSize(dtype), Storage::kRaw};
  }
};

// "[3, 64, 7, 7]"
std::string ShapeToString(std::span<const int64_t> shape);

}  // namespace modelpress
