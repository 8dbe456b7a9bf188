// Channel-group analysis: which channels of a graph must be removed together
// for structured (filter/channel) pruning. Pure: the model is not changed.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "modelpress/onnx_io.h"

namespace modelpress {

// A unit is one removable channel: a filter of a Conv together with every
// channel coupled to it (the same channel on the other side of a residual
// Add, the depthwise filter that reads it, the BatchNormalization parameters
// that scale it, the rows of the next layer that read it). Units are numbered
// 0..unit_count-1 across the model; a group owns a contiguous range of them.
inline constexpr int64_t kFixedUnit = -1;  // a position no pruning may remove (e.g. graph-input channels)

// One constant tensor that loses positions along one axis when units go.
struct ChannelSlice {
  std::string tensor;           // initializer or Constant-node output name
  std::string value;            // the name the node reads: `tensor`, or an Identity copy of it
  std::string node;             // the node reading the tensor (for messages)
  int node_index = -1;          // its index in graph.node; when other nodes read the tensor too (or it is
                                // read through Identity), this node gets a sliced private copy
  int axis = 0;                 // axis of the tensor that is sliced
  std::vector<int64_t> units;   // per position along `axis`: the unit it belongs to, or kFixedUnit
  bool produces = false;        // true: the tensor computes the channels (filter, bias, norm parameter); false: reads them
  bool scored = false;          // true: its magnitudes count toward the unit scores (linear weights, norm scale)
};

// A shape-describing integer that must shrink with the channels: the merged
// dim of a Reshape's shape constant, a Split size, a Slice bound on the
// channel axis, a depthwise Conv's group count. The new value is the number of kept positions in `units`
// (for kSliceStart: kept positions before the slice, taken from `units`).
struct ShapeFixup {
  enum Kind {
    kReshapeDim,   // `tensor`[index] = kept positions
    kSplitSize,    // split size `index` of node `node` (attribute or input) = kept positions
    kSliceStart,   // `tensor`[index] (a Slice `starts`) = kept positions before the start
    kSliceEnd,     // `tensor`[index] (a Slice `ends`) = kept positions before the end
    kConvGroup,    // the `group` attribute of depthwise Conv `node` = kept positions
  };
  Kind kind = kReshapeDim;
  int node = -1;                // index in graph.node
  std::string tensor;           // the constant holding the integers ("" for a Split attribute or missing split)
  int index = 0;                // element of the constant (or split output)
  std::vector<int64_t> units;   // positions whose kept count gives the new value (see Kind)
};

// Channels that are coupled: every unit of a group has one position in each
// tensor of the group's slices. `prunable` is false, with a reason, when the
// analysis cannot prove that removing a unit keeps the graph valid.
struct ChannelGroup {
  int id = 0;                          // index in ChannelAnalysis::groups
  std::vector<std::string> producers;  // nodes whose output channels form the group (Conv, Gemm, MatMul...), graph order
  int64_t first_unit = 0;              // units [first_unit, first_unit + channels)
  int64_t channels = 0;                // removable units of the group
  bool prunable = true;                // false: refused, see reason
  std::string reason;                  // why refused ("" when prunable)
};

struct ChannelAnalysis {
  std::vector<ChannelGroup> groups;   // in order of their first producer
  std::vector<int> unit_group;        // group of every unit
  std::vector<ChannelSlice> slices;   // tensors to slice, for all groups
  std::vector<ShapeFixup> fixups;     // integers to update, for all groups
  std::vector<std::string> notices;   // e.g. shape inference could not run
};

// Shapes of the graph's values from ONNX shape inference run on a copy of the
// graph without its floating-point weight data: dims per value name, -1 for
// a symbolic or unknown dim. Constant tensors carry their declared dims.
struct ValueShapes {
  std::unordered_map<std::string, std::vector<int64_t>> dims;  // value name -> dims
  std::string notice;                                          // why inference failed ("" when it ran)
};
ValueShapes InferValueShapes(const Model& model);

// Finds the channel groups of `model`. Channels start at the output of a
// Conv, ConvTranspose (group 1), Gemm or MatMul with a constant weight, and
// are followed through BatchNormalization/InstanceNormalization,
// element-wise activations, element-wise Add/Sub/Mul/Div/Max/Min with
// another activation (coupling both) or a broadcast constant (sliced),
// depthwise Conv, pooling, Pad without channel padding, Concat (ranges),
// Split and Slice on the channel axis, Transpose, Squeeze/Unsqueeze,
// Flatten and dim-merging Reshape (one channel becomes a block of features)
// into Gemm/MatMul, and reductions over other axes. A group is refused when
// any of its channels reaches a graph output, an operator or pattern not
// listed (a Reshape that splits the channel axis, a grouped Conv, attention's
// MatMul of two activations, a channel shuffle), a weight that is not a
// constant, or a tensor whose shape is unknown where it matters. Constants
// shared with other nodes (also through Identity) are sliced per reader.
// Shapes come from ONNX shape inference on a copy of the graph (weights not
// copied).
ChannelAnalysis AnalyzeChannelGroups(const Model& model);

}  // namespace modelpress
