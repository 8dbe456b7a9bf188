// Sparsity measurements on tensor views: exact zeros and N:M compliance.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress {

// Number of elements that are exactly zero (+0 or -0 for floating point).
int64_t CountZeros(const TensorView& t);

// A shape seen around one axis: element (o, l, i) sits at flat index
// (o * length + l) * inner + i, with o < outer, l < length, i < inner.
struct AxisSplit {
  int64_t outer = 1;   // product of the dimensions before the axis
  int64_t length = 0;  // the axis's own dimension
  int64_t inner = 1;   // product of the dimensions after the axis
};

// Splits `shape` around `axis` (negative counts from the end).
Result<AxisSplit> SplitAtAxis(std::span<const int64_t> shape, int axis);

// Whether a tensor has at most N nonzeros in every group of M consecutive
// elements along `axis`; groups are formed separately for every position of
// the other axes (so a Conv weight [K, C, kH, kW] checked on axis 1 forms
// groups along C for every (k, kh, kw)).
struct NMCheck {
  bool applicable = false;    // false when the axis length is not a multiple of M, or no axis
  std::string reason;         // why not applicable
  int64_t groups = 0;         // groups examined
  int64_t violating = 0;      // groups with more than N nonzeros
  bool compliant() const { return applicable && violating == 0; }
};
NMCheck CheckNM(const TensorView& t, int axis, int n, int m);

}  // namespace modelpress
