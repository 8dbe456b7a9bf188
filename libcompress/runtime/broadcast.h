// Numpy broadcasting for element-wise kernels, and dispatch on element type.
#pragma once

#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "runtime/kernel.h"

namespace modelpress::runtime {

// Walks `out_shape` in C order for K inputs whose shapes broadcast to it,
// calling body(out_offset, in_offsets, n, in_inner_steps) for runs of n
// output elements along the last axis; input k's j-th element of the run is
// at in_offsets[k] + j * in_inner_steps[k] (the step is 0 when broadcast).
template <size_t K, class Body>
void ForEachBroadcast(const std::vector<int64_t>& out_shape, const std::array<const std::vector<int64_t>*, K>& in_shapes,
                      Body&& body) {
  const int rank = static_cast<int>(out_shape.size());
  const int64_t total = Product(out_shape);
  if (total == 0) return;
  // Per input, the element stride along each output axis (0 where broadcast).
  std::array<std::vector<int64_t>, K> st;
  for (size_t k = 0; k < K; ++k) {
    const auto& s = *in_shapes[k];
    st[k].assign(rank, 0);
    int64_t stride = 1;
    for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
      const int od = d + rank - static_cast<int>(s.size());
      st[k][od] = s[d] == 1 ? 0 : stride;
      stride *= s[d];
    }
  }
  const int64_t inner = rank == 0 ? 1 : out_shape[rank - 1];
  std::array<int64_t, K> step{};
  for (size_t k = 0; k < K; ++k) step[k] = rank == 0 ? 0 : st[k][rank - 1];
  std::vector<int64_t> idx(rank, 0);
  std::array<int64_t, K> off{};
  for (int64_t out = 0; out < total; out += inner) {
    body(out, off, inner, step);
    // Advance the index over the outer axes, updating offsets incrementally.
    for (int d = rank - 2; d >= 0; --d) {
      if (++idx[d] < out_shape[d]) {
        for (size_t k = 0; k < K; ++k) off[k] += st[k][d];
        break;
      }
      for (size_t k = 0; k < K; ++k) off[k] -= st[k][d] * (out_shape[d] - 1);
      idx[d] = 0;
    }
  }
}

// The element type of C++ type T.
template <class T>
constexpr DType DTypeOf() {
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  if constexpr (std::is_same_v<T, int64_t>) return DType::kInt64;
  if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
  if constexpr (std::is_same_v<T, int8_t>) return DType::kInt8;
  if constexpr (std::is_same_v<T, uint8_t>) return DType::kUint8;
  return DType::kUndefined;
}

// Calls f(T{}) with T the C++ type of `d` among the numeric types the
// executor computes with; Unsupported for the others.
template <class F>
Status DispatchNumeric(DType d, const std::string& what, F&& f) {
  switch (d) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat64: return f(double{});
    case DType::kInt64: return f(int64_t{});
    case DType::kInt32: return f(int32_t{});
    case DType::kInt8: return f(int8_t{});
    case DType::kUint8: return f(uint8_t{});
    default: return Unsupported(what + " does not support element type " + DTypeName(d));
  }
}

// Like DispatchNumeric, for float32 and float64 only.
template <class F>
Status DispatchFloat(DType d, const std::string& what, F&& f) {
  switch (d) {
    case DType::kFloat32: return f(float{});
    case DType::kFloat64: return f(double{});
    default: return Unsupported(what + " does not support element type " + DTypeName(d));
  }
}

// Any element type, by size only (for kernels that move data without looking at it).
template <class F>
Status DispatchBySize(DType d, F&& f) {
  switch (DTypeSize(d)) {
    case 1: return f(uint8_t{});
    case 2: return f(uint16_t{});
    case 4: return f(uint32_t{});
    case 8: return f(uint64_t{});
    default: return Unsupported("element type " + DTypeName(d) + " is not supported");
  }
}

}  // namespace modelpress::runtime
