// Test helpers: run a small graph built with ModelBuilder through the
// executor, and compare tensors against plain reference loops.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "modelpress/runtime.h"
#include "support/model_builder.h"

namespace modelpress::runtime::test {

// Adds a string attribute to the last node (ModelBuilder has none).
inline void StringAttr(onnx::ModelProto& p, const std::string& name, const std::string& value) {
  auto* a = p.mutable_graph()->mutable_node(p.graph().node_size() - 1)->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(value);
}

// Builds, creates the executor and runs once. Outputs are copied so they
// outlive the model.
inline Result<std::vector<Tensor>> RunGraph(const onnx::ModelProto& proto, const std::vector<Tensor>& inputs) {
  MP_ASSIGN_OR_RETURN(Model m, Model::FromProto(proto));
  MP_ASSIGN_OR_RETURN(Executor e, Executor::Create(m));
  MP_ASSIGN_OR_RETURN(std::vector<Tensor> out, e.Run(inputs));
  std::vector<Tensor> owned;
  for (const Tensor& t : out) {
    MP_ASSIGN_OR_RETURN(Tensor c, Tensor::Copy(t.dtype(), t.shape(), t.raw()));
    owned.push_back(std::move(c));
  }
  return owned;
}

// Largest |a - b| / (1 + |a|) over two equally long float sequences.
inline double MaxScaledDiff(std::span<const float> want, std::span<const float> got) {
  EXPECT_EQ(want.size(), got.size());
  double m = 0;
  for (size_t i = 0; i < std::min(want.size(), got.size()); ++i) {
    const double d = std::abs(static_cast<double>(want[i]) - got[i]) / (1.0 + std::abs(want[i]));
    m = std::max(m, std::isnan(d) ? INFINITY : d);
  }
  return m;
}

// float32 GEMM-based kernels against double-accumulating reference loops.
constexpr double kGemmTolerance = 1e-5;

}  // namespace modelpress::runtime::test
