// Spatial geometry shared by Conv, ConvTranspose and the pooling kernels:
// kernel size, strides, dilations and pads per spatial axis, resolved from
// the ONNX attributes (including auto_pad).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/kernel.h"

namespace modelpress::runtime {

struct SpatialGeometry {
  std::vector<int64_t> in;        // input spatial dims
  std::vector<int64_t> kernel;    // kernel spatial dims
  std::vector<int64_t> stride;    // per axis, >= 1
  std::vector<int64_t> dilation;  // per axis, >= 1
  std::vector<int64_t> pad_begin; // zero padding before each axis
  std::vector<int64_t> pad_end;   // zero padding after each axis
  std::vector<int64_t> out;       // output spatial dims

  int rank() const { return static_cast<int>(in.size()); }
};

// Reads strides, dilations, pads and auto_pad of a Conv/pooling node for
// input spatial dims `in` and kernel dims `kernel`, and computes the output
// dims (floor, or ceil when `ceil_mode`). Fails naming the attribute that is
// malformed or an output that would be empty.
Result<SpatialGeometry> ResolveGeometry(const KernelContext& c, std::vector<int64_t> in, std::vector<int64_t> kernel,
                                        bool ceil_mode = false);

// Copies the receptive fields of one image `x` [C, in...] into `col`
// [C * prod(kernel), prod(out)] (row-major, rows `ld` floats apart; ld 0
// means prod(out)), zero where the field falls in the padding.
void Im2Col(const float* x, int64_t channels, const SpatialGeometry& g, float* col, int64_t ld = 0);

// The adjoint of Im2Col: adds every column entry back onto the image
// position it came from (entries in the padding are dropped). `x` must be
// zeroed (or hold a bias) first.
void Col2Im(const float* col, int64_t channels, const SpatialGeometry& g, float* x);

}  // namespace modelpress::runtime
