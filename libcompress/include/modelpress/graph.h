// Graph analysis: who produces and consumes each value, and what role each
// constant tensor plays (the basis of pruning and quantization).
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "modelpress/onnx_io.h"

namespace modelpress {

// What a constant tensor is to the operators that read it.
enum class WeightRole {
  kConvWeight,           // Conv W [K, C/group, kH, kW...]
  kConvTransposeWeight,  // ConvTranspose W [C, K/group, kH, kW...]
  kGemmWeight,           // Gemm B (or a constant A)
  kMatMulWeight,         // MatMul B, or a constant left operand A
  kBias,                 // Conv/ConvTranspose B, Gemm C, or an Add right after a MatMul/Gemm
  kNormParam,            // scale, bias, mean or variance of a normalisation
  kEmbedding,            // data of a Gather (a lookup table)
  kQuantParam,           // scale or zero point of QuantizeLinear/DequantizeLinear
  kOther,                // anything else (shapes, constants of element-wise ops)
  kUnused,               // read by no node
};

// Short name used in tables and JSON, e.g. "conv_weight".
std::string_view WeightRoleName(WeightRole role);

// True for the roles whose tensor multiplies activations (Conv, ConvTranspose, Gemm, MatMul).
bool IsLinearWeight(WeightRole role);

// One node input that reads a value.
struct Use {
  int node = -1;           // index in graph.node
  int input = -1;          // input slot of that node; -1 when read inside one of its subgraphs (If/Loop/Scan bodies)
};

// Producers and consumers of every value of the main graph. A value read
// inside a subgraph counts as read by the node owning the subgraph (input -1).
struct GraphIndex {
  std::unordered_map<std::string, int> producer;               // value -> node index
  std::unordered_map<std::string, std::vector<Use>> consumers;  // value -> uses, in node order
};
GraphIndex IndexGraph(const onnx::GraphProto& graph);

struct WeightInfo {
  std::string name;
  WeightRole role = WeightRole::kOther;
  std::vector<Use> uses;        // direct readers of the tensor
  int role_node = -1;           // the node that gives the role (through DequantizeLinear/Identity/Cast)
  std::string via;              // op type passed through to reach role_node ("" when direct)
  int output_axis = -1;         // axis of output channels for linear weights, else -1
  int reduction_axis = -1;      // axis summed over (input channels) for linear weights, else -1
  int64_t group = 1;            // Conv/ConvTranspose group count
  bool conflicting = false;     // readers disagree on the role; role is then kOther
};

// Roles of every tensor of `model.tensors()`, in the same order. Pure: the
// model is not changed. Axes follow DESIGN.md: Conv W out 0 / reduction 1;
// ConvTranspose W out 1 / reduction 0; Gemm B out 0 / reduction 1 when
// transB=1, else out 1 / reduction 0; MatMul B [.., in, out] out rank-1 /
// reduction rank-2.
std::vector<WeightInfo> AnalyzeWeights(const Model& model);

}  // namespace modelpress
