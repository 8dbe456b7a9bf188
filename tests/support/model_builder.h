// Builds small ONNX graphs in code for tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "modelpress/onnx_io.h"

namespace modelpress::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 13);

  // A graph input of float32 (or `dtype`) with the given shape; negative dims become symbolic "N".
  ModelBuilder& Input(const std::string& name, std::vector<int64_t> shape, int32_t dtype = onnx::TensorProto::FLOAT);
  ModelBuilder& Output(const std::string& name, int32_t dtype = onnx::TensorProto::FLOAT);

  // A float32 initializer in raw_data, values filled from a fixed-seed generator when empty.
  ModelBuilder& Weight(const std::string& name, std::vector<int64_t> shape, std::vector<float> values = {});
  // Any initializer, given whole.
  ModelBuilder& Initializer(onnx::TensorProto tensor);

  // A node; returns the builder so attributes can follow with Attr().
  ModelBuilder& Node(const std::string& op, std::vector<std::string> inputs, std::vector<std::string> outputs);
  ModelBuilder& Attr(const std::string& name, int64_t value);
  ModelBuilder& Attr(const std::string& name, float value);
  ModelBuilder& Attr(const std::string& name, std::vector<int64_t> values);
  ModelBuilder& Attr(const std::string& name, const onnx::TensorProto& value);

  onnx::ModelProto Proto() const { return model_; }
  Model Build() const;

 private:
  onnx::ModelProto model_;
  uint32_t seed_ = 12345;
};

// Deterministic values in [-1, 1).
std::vector<float> RandomValues(size_t n, uint32_t seed);

// A float32 TensorProto with values in raw_data.
onnx::TensorProto FloatTensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values);

// A 1-D int64 TensorProto (shapes, split sizes, slice bounds) with values in raw_data.
onnx::TensorProto Int64Tensor(const std::string& name, const std::vector<int64_t>& values);

}  // namespace modelpress::testing
