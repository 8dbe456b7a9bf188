// What every kernel sees: its node, the model's opset, its input tensors and
// the slots for its outputs; plus the shared helpers kernels are built from.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "modelpress/runtime.h"

namespace modelpress::runtime {

class KernelContext {
 public:
  KernelContext(const onnx::NodeProto& node, int64_t opset, std::vector<const Tensor*> inputs,
                std::vector<Tensor>* outputs)
      : node_(node), opset_(opset), inputs_(std::move(inputs)), outputs_(outputs) {}

  const onnx::NodeProto& node() const { return node_; }
  int64_t opset() const { return opset_; }

  // Input i, or nullptr when absent (past the end, or an empty name).
  const Tensor* input(int i) const { return i < static_cast<int>(inputs_.size()) ? inputs_[i] : nullptr; }
  int input_count() const { return static_cast<int>(inputs_.size()); }
  // Input i that the op requires; InvalidArgument when absent.
  Result<const Tensor*> Required(int i) const;
  int output_count() const { return static_cast<int>(outputs_->size()); }
  // Whether output i is wanted by the graph (present with a non-empty name).
  bool wants(int i) const { return i < node_.output_size() && !node_.output(i).empty(); }
  void set_output(int i, Tensor t) { (*outputs_)[i] = std::move(t); }
  // Set by the executor when a Relu reading only this node's output follows
  // and nobody observes the value in between (Conv and Gemm only): the
  // kernel must clamp its output at zero itself; the Relu then passes it on.
  bool fused_relu() const { return fused_relu_; }
  void set_fused_relu(bool on) { fused_relu_ = on; }

  const onnx::AttributeProto* Attr(const std::string& name) const;
  int64_t Int(const std::string& name, int64_t fallback) const;
  float Float(const std::string& name, float fallback) const;
  std::string String(const std::string& name, const std::string& fallback) const;
  std::optional<std::vector<int64_t>> Ints(const std::string& name) const;
  std::optional<std::vector<float>> Floats(const std::string& name) const;

 private:
  const onnx::NodeProto& node_;
  int64_t opset_;
  std::vector<const Tensor*> inputs_;
  std::vector<Tensor>* outputs_;
  bool fused_relu_ = false;
};

// A kernel computes all outputs of one node; its error messages say what is
// wrong and the executor prefixes them with the node's name and op.
using KernelFn = Status (*)(KernelContext&);

struct KernelEntry {
  KernelFn fn = nullptr;
  int min_opset = 1;  // oldest opset whose semantics the kernel implements
};

using KernelTable = std::map<std::string, KernelEntry>;

// Each family file adds its ops to the table.
void RegisterElementwiseKernels(KernelTable& table);
void RegisterMatMulKernels(KernelTable& table);
void RegisterConvKernels(KernelTable& table);
void RegisterPoolKernels(KernelTable& table);
void RegisterNormKernels(KernelTable& table);
void RegisterShapeKernels(KernelTable& table);
void RegisterQuantKernels(KernelTable& table);

// The full table, built once.
const KernelTable& Kernels();

// Shared helpers.

// Axis in [-rank, rank) to [0, rank); InvalidArgument naming the axis otherwise.
Result<int> NormalizeAxis(int64_t axis, int rank);
// Numpy broadcasting of two shapes; InvalidArgument naming both otherwise.
Result<std::vector<int64_t>> BroadcastShapes(const std::vector<int64_t>& a, const std::vector<int64_t>& b);
// Product of dims [from, to).
int64_t Product(const std::vector<int64_t>& dims, int from = 0, int to = -1);
// Reads an int64 or int32 tensor as int64 values (shapes, axes, indices).
Result<std::vector<int64_t>> ReadInts(const Tensor& t, const std::string& what);
// Reads a float-typed scalar-ish tensor's element 0 as float (Clip bounds, Pad value).
Result<float> ReadScalar(const Tensor& t, const std::string& what);
// Strides of a C-order shape, in elements.
std::vector<int64_t> Strides(const std::vector<int64_t>& shape);
// "float32 tensor [1, 3]" for messages.
std::string Describe(const Tensor& t);

// Converts `t` to `to` (Cast semantics: float to int truncates toward zero,
// to bool is "!= 0").
Result<Tensor> CastTensor(const Tensor& t, DType to);

}  // namespace modelpress::runtime
