// Structured pruning, the mutation half (internal to libcompress/prune):
// given which units go, slice the tensors and fix the shape integers.
#pragma once

#include <cstdint>
#include <vector>

#include "modelpress/channel_groups.h"
#include "modelpress/onnx_io.h"
#include "modelpress/status.h"

namespace modelpress::prune_detail {

// Number of positions of `units` that survive (kFixedUnit always does).
int64_t KeptCount(const std::vector<int64_t>& units, const std::vector<uint8_t>& removed);

// Removes the units marked in `removed` (one byte per unit of `analysis`)
// from `model`: every slice and fixup of the analysis is applied to a copy of
// the model, stale value_info is dropped and re-inferred, and the copy
// replaces `model` only when ONNX's strict shape inference accepts it (or
// could not judge the original either, noted in `notices`). On error the
// model is unchanged.
Status ApplyChannelRemoval(Model& model, const ChannelAnalysis& analysis, const std::vector<uint8_t>& removed,
                           std::vector<std::string>* notices);

// Multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul nodes for one
// run, with symbolic dims counted as 1; nodes whose shapes are unknown are
// counted in `unknown`.
int64_t CountMacs(const Model& model, const ValueShapes& shapes, int* unknown);

// Elements of every floating-point constant tensor.
int64_t CountParameters(const Model& model);

}  // namespace modelpress::prune_detail
