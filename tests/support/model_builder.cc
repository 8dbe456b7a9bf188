#include "support/model_builder.h"

#include <cstring>
#include <stdexcept>

namespace modelpress::testing {

std::vector<float> RandomValues(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<double>(state >> 40) / static_cast<double>(1ull << 24) * 2.0 - 1.0);
  }
  return v;
}

onnx::TensorProto FloatTensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

onnx::TensorProto Int64Tensor(const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  t.set_raw_data(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t)));
  return t;
}

ModelBuilder::ModelBuilder(int64_t opset) {
  model_.set_ir_version(7);
  model_.set_producer_name("modelpress-tests");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name("test");
}

ModelBuilder& ModelBuilder::Input(const std::string& name, std::vector<int64_t> shape, int32_t dtype) {
  auto* v = model_.mutable_graph()->add_input();
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(dtype);
  auto* s = tt->mutable_shape();
  for (int64_t d : shape) {
    if (d < 0) {
      s->add_dim()->set_dim_param("N");
    } else {
      s->add_dim()->set_dim_value(d);
    }
  }
  return *this;
}

ModelBuilder& ModelBuilder::Output(const std::string& name, int32_t dtype) {
  auto* v = model_.mutable_graph()->add_output();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(dtype);
  return *this;
}

ModelBuilder& ModelBuilder::Weight(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
  size_t n = 1;
  for (int64_t d : shape) n *= static_cast<size_t>(d);
  if (values.empty()) values = RandomValues(n, seed_++);
  if (values.size() != n) throw std::invalid_argument("ModelBuilder::Weight: value count does not match shape");
  *model_.mutable_graph()->add_initializer() = FloatTensor(name, shape, values);
  return *this;
}

ModelBuilder& ModelBuilder::Initializer(onnx::TensorProto tensor) {
  *model_.mutable_graph()->add_initializer() = std::move(tensor);
  return *this;
}

ModelBuilder& ModelBuilder::Node(const std::string& op, std::vector<std::string> inputs, std::vector<std::string> outputs) {
  auto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(op + "_" + std::to_string(model_.graph().node_size()));
  for (auto& i : inputs) n->add_input(i);
  for (auto& o : outputs) n->add_output(o);
  return *this;
}

ModelBuilder& ModelBuilder::Attr(const std::string& name, int64_t value) {
  auto* a = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1)->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
  return *this;
}

ModelBuilder& ModelBuilder::Attr(const std::string& name, float value) {
  auto* a = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1)->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(value);
  return *this;
}

ModelBuilder& ModelBuilder::Attr(const std::string& name, std::vector<int64_t> values) {
  auto* a = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1)->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
  return *this;
}

ModelBuilder& ModelBuilder::Attr(const std::string& name, const onnx::TensorProto& value) {
  auto* a = model_.mutable_graph()->mutable_node(model_.graph().node_size() - 1)->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::TENSOR);
  *a->mutable_t() = value;
  return *this;
}

Model ModelBuilder::Build() const {
  auto m = Model::FromProto(model_);
  if (!m.ok()) throw std::runtime_error(m.status().message());
  return std::move(m).value();
}

}  // namespace modelpress::testing
