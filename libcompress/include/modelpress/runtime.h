// Reference CPU executor: runs float32 ONNX graphs (opset 6-17) for
// calibration, sensitivity analysis and accuracy measurement. Production
// inference belongs to ONNX Runtime or TensorRT; this one exists because
// calibration must see every intermediate tensor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "modelpress/onnx_io.h"
#include "modelpress/status.h"
#include "modelpress/tensor.h"

namespace modelpress::runtime {

// A dense tensor in C order. Either owns its bytes (shared between copies, so
// copying a Tensor is cheap and Reshape/Identity never copy data) or borrows
// them from a Model, which must then outlive it. Element types the executor
// computes with: float32, float64, int64, int32, int8, uint8 and bool (one
// byte, 0 or 1).
class Tensor {
 public:
  Tensor() = default;

  // An owned tensor of zero-initialised elements. Fails when the shape has a
  // negative dimension, the element count overflows, or the type has no
  // fixed size.
  static Result<Tensor> Zeros(DType dtype, std::vector<int64_t> shape);
  // As Zeros, but the elements are left unset: for kernels that write them all.
  static Result<Tensor> Uninitialized(DType dtype, std::vector<int64_t> shape);
  // An owned copy of `count` packed elements at `data`.
  static Result<Tensor> Copy(DType dtype, std::vector<int64_t> shape, const void* data);
  // A tensor viewing `data` without copying; the caller keeps it alive.
  static Tensor Borrow(DType dtype, std::vector<int64_t> shape, const void* data);
  // Shorthands for tests and tools.
  static Tensor FromFloats(std::vector<int64_t> shape, std::span<const float> values);
  static Tensor FromInt64s(std::vector<int64_t> shape, std::span<const int64_t> values);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t size() const { return size_; }
  size_t bytes() const { return static_cast<size_t>(size_) * DTypeSize(dtype_); }
  bool empty_type() const { return dtype_ == DType::kUndefined; }

  // Typed access; T must match dtype() in size (callers check the dtype).
  template <class T>
  const T* data() const {
    return reinterpret_cast<const T*>(data_);
  }
  // Writable access; only for tensors created by Zeros/Uninitialized/Copy and not yet shared.
  template <class T>
  T* mutable_data() {
    return reinterpret_cast<T*>(const_cast<std::byte*>(data_));
  }
  template <class T>
  std::span<const T> values() const {
    return {data<T>(), static_cast<size_t>(size_)};
  }
  const std::byte* raw() const { return data_; }

  // The same bytes under another shape with the same element count.
  Tensor Reshaped(std::vector<int64_t> shape) const;

  // Element i as double (bool as 0/1).
  double AsDouble(int64_t i) const;

 private:
  DType dtype_ = DType::kUndefined;
  std::vector<int64_t> shape_;
  int64_t size_ = 0;
  const std::byte* data_ = nullptr;
  std::shared_ptr<std::byte[]> owner_;  // null when borrowed
};

// A graph input or output as the model declares it.
struct ValueSpec {
  std::string name;                // graph value name
  DType dtype = DType::kUndefined; // declared element type (kUndefined when not declared)
  std::vector<int64_t> shape;      // declared dims; -1 for symbolic or unknown dims
  bool has_shape = false;          // false when the model declares no shape at all
};

// Checks that a batch of samples of `shape` (samples along the first dim),
// read from `samples_name`, fits the declared shape of `in`, an input of
// `model_name`; the error names both and the expected shape.
Status CheckSamplesFit(const ValueSpec& in, std::span<const int64_t> shape, const std::string& samples_name,
                       const std::string& model_name);

// Receives every tensor as soon as it exists: each graph input once at the
// start of a run, then every node output as its node finishes. The tensor is
// valid only during the call (it may be freed right after); copy what must be
// kept. Called on the thread that calls Run.
using Observer = std::function<void(const std::string& name, const Tensor& value)>;

struct ExecutorOptions {
  bool check_input_shapes = true;  // refuse inputs whose dtype or fixed dims differ from the declaration (default true)
};

// Figures about one Run, for tests and tools.
struct RunStats {
  int64_t peak_live_bytes = 0;  // most bytes held at once by tensors computed in the run (upper bound: aliases count twice)
  int64_t nodes_run = 0;        // nodes executed
};

// Runs one model. Built once per model, then run on as many batches as
// wanted, one at a time. Weights are viewed in the Model without copying
// (float16/bfloat16 weights are converted to float32 once), so the Model must
// outlive the Executor and must not be mutated meanwhile. Run is const and
// keeps no state between calls.
class Executor {
 public:
  // Orders the nodes topologically and resolves constants. Corrupt when a
  // node reads a value nothing produces, two nodes write one value, or the
  // graph has a cycle; Unsupported for an operator (or opset, or domain) the
  // executor does not implement. Errors name the model, the node and the
  // value or operator.
  static Result<Executor> Create(const Model& model, const ExecutorOptions& options = {});

  Executor(Executor&&) noexcept;
  Executor& operator=(Executor&&) noexcept;
  ~Executor();

  // Graph inputs that are not initializers, and graph outputs, in model order.
  const std::vector<ValueSpec>& inputs() const;
  const std::vector<ValueSpec>& outputs() const;

  // Runs the graph on `inputs` (one per inputs(), same order) and returns the
  // graph outputs in model order. Intermediate tensors are freed after their
  // last consumer, so memory is bounded by the live set. Errors name the node
  // that failed and why (bad input shape or dtype, unsupported attribute).
  // `stats`, when given, receives figures about this run. Run may be called
  // from several threads at once.
  Result<std::vector<Tensor>> Run(const std::vector<Tensor>& inputs, const Observer& observer = {},
                                  RunStats* stats = nullptr) const;

 private:
  struct Impl;
  explicit Executor(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Op types the executor implements (in the default ONNX domain), sorted.
std::vector<std::string> SupportedOps();

// Reads a serialized TensorProto (the input_N.pb/output_N.pb files of ONNX's
// test data) into an owned tensor; float16/bfloat16 become float32.
Result<Tensor> TensorFromProto(const onnx::TensorProto& proto, const std::string& where);

}  // namespace modelpress::runtime
