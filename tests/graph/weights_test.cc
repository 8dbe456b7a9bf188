#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "modelpress/graph.h"
#include "support/model_builder.h"

namespace modelpress {
namespace {

using testing::FloatTensor;
using testing::ModelBuilder;

onnx::TensorProto Int8Tensor(const std::string& name, std::vector<int64_t> shape) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT8);
  int64_t n = 1;
  for (int64_t d : shape) {
    t.add_dims(d);
    n *= d;
  }
  std::string raw(static_cast<size_t>(n), '\0');
  for (int64_t i = 0; i < n; ++i) raw[i] = static_cast<char>(i % 7 - 3);
  t.set_raw_data(raw);
  return t;
}

// The analysis of tensor `name`; fails the test when it is missing.
WeightInfo Find(const Model& model, const std::string& name) {
  for (const WeightInfo& w : AnalyzeWeights(model)) {
    if (w.name == name) return w;
  }
  ADD_FAILURE() << "no analysis for tensor '" << name << "'";
  return {};
}

// Index of the node that produces `output`.
int NodeOf(const Model& model, const std::string& output) {
  const auto& g = model.proto().graph();
  for (int i = 0; i < g.node_size(); ++i) {
    for (const auto& o : g.node(i).output()) {
      if (o == output) return i;
    }
  }
  ADD_FAILURE() << "no node produces '" << output << "'";
  return -1;
}

void ExpectLinear(const WeightInfo& w, WeightRole role, int output_axis, int reduction_axis) {
  EXPECT_EQ(w.role, role) << w.name << " is " << WeightRoleName(w.role);
  EXPECT_EQ(w.output_axis, output_axis) << w.name;
  EXPECT_EQ(w.reduction_axis, reduction_axis) << w.name;
  EXPECT_FALSE(w.conflicting) << w.name;
}

TEST(WeightsTest, ConvWeightAndBias) {
  ModelBuilder b;
  b.Input("X", {1, 3, 8, 8}).Weight("W", {4, 3, 3, 3}).Weight("B", {4});
  b.Node("Conv", {"X", "W", "B"}, {"Y"}).Output("Y");
  const Model m = b.Build();
  const WeightInfo w = Find(m, "W");
  ExpectLinear(w, WeightRole::kConvWeight, 0, 1);
  EXPECT_EQ(w.group, 1);
  EXPECT_EQ(w.role_node, NodeOf(m, "Y"));
  EXPECT_EQ(w.via, "");
  ASSERT_EQ(w.uses.size(), 1u);
  EXPECT_EQ(w.uses[0].input, 1);
  EXPECT_EQ(Find(m, "B").role, WeightRole::kBias);
}

TEST(WeightsTest, DepthwiseConvKeepsGroup) {
  ModelBuilder b;
  b.Input("X", {1, 6, 8, 8}).Weight("W", {6, 1, 3, 3});
  b.Node("Conv", {"X", "W"}, {"Y"}).Attr("group", int64_t{6}).Output("Y");
  const WeightInfo w = Find(b.Build(), "W");
  ExpectLinear(w, WeightRole::kConvWeight, 0, 1);
  EXPECT_EQ(w.group, 6);
}

TEST(WeightsTest, Conv1dWeight) {
  ModelBuilder b;
  b.Input("X", {1, 3, 16}).Weight("W", {5, 3, 3});
  b.Node("Conv", {"X", "W"}, {"Y"}).Output("Y");
  ExpectLinear(Find(b.Build(), "W"), WeightRole::kConvWeight, 0, 1);
}

TEST(WeightsTest, ConvTransposeWeightIsInputMajor) {
  ModelBuilder b;
  b.Input("X", {1, 3, 8, 8}).Weight("W", {3, 2, 3, 3}).Weight("B", {2});
  b.Node("ConvTranspose", {"X", "W", "B"}, {"Y"}).Output("Y");
  const Model m = b.Build();
  ExpectLinear(Find(m, "W"), WeightRole::kConvTransposeWeight, 1, 0);
  EXPECT_EQ(Find(m, "B").role, WeightRole::kBias);
}

TEST(WeightsTest, GemmTransposedB) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("B", {4, 8}).Weight("C", {4});
  b.Node("Gemm", {"X", "B", "C"}, {"Y"}).Attr("transB", int64_t{1}).Output("Y");
  const Model m = b.Build();
  ExpectLinear(Find(m, "B"), WeightRole::kGemmWeight, 0, 1);
  EXPECT_EQ(Find(m, "C").role, WeightRole::kBias);
}

TEST(WeightsTest, GemmPlainB) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("B", {8, 4});
  b.Node("Gemm", {"X", "B"}, {"Y"}).Attr("transB", int64_t{0}).Output("Y");
  ExpectLinear(Find(b.Build(), "B"), WeightRole::kGemmWeight, 1, 0);
}

TEST(WeightsTest, GemmWithoutTransBAttributeDefaultsToPlain) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("B", {8, 4});
  b.Node("Gemm", {"X", "B"}, {"Y"}).Output("Y");
  ExpectLinear(Find(b.Build(), "B"), WeightRole::kGemmWeight, 1, 0);
}

TEST(WeightsTest, MatMul2dWeight) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W", {8, 4});
  b.Node("MatMul", {"X", "W"}, {"Y"}).Output("Y");
  ExpectLinear(Find(b.Build(), "W"), WeightRole::kMatMulWeight, 1, 0);
}

TEST(WeightsTest, MatMulBatchedWeight) {
  ModelBuilder b;
  b.Input("X", {2, 5, 8}).Weight("W", {2, 8, 4});
  b.Node("MatMul", {"X", "W"}, {"Y"}).Output("Y");
  ExpectLinear(Find(b.Build(), "W"), WeightRole::kMatMulWeight, 2, 1);
}

TEST(WeightsTest, MatMulConstantOnTheLeft) {
  // Y[4, 3] = A[4, 8] X[8, 3]: A's rows are the outputs, its columns are summed over.
  ModelBuilder b;
  b.Input("X", {8, 3}).Weight("A", {4, 8});
  b.Node("MatMul", {"A", "X"}, {"Y"}).Output("Y");
  const WeightInfo a = Find(b.Build(), "A");
  ExpectLinear(a, WeightRole::kMatMulWeight, 0, 1);
  ASSERT_EQ(a.uses.size(), 1u);
  EXPECT_EQ(a.uses[0].input, 0);
}

TEST(WeightsTest, AddAfterMatMulIsBias) {
  ModelBuilder b;
  b.Input("X", {2, 5, 8}).Weight("W", {8, 4}).Weight("bias_right", {4}).Weight("bias_left", {4});
  b.Node("MatMul", {"X", "W"}, {"H"});
  b.Node("Add", {"H", "bias_right"}, {"Y1"}).Output("Y1");
  b.Node("Add", {"bias_left", "H"}, {"Y2"}).Output("Y2");
  const Model m = b.Build();
  EXPECT_EQ(Find(m, "bias_right").role, WeightRole::kBias);
  EXPECT_EQ(Find(m, "bias_left").role, WeightRole::kBias);
}

TEST(WeightsTest, AddNotAfterMatMulIsNotBias) {
  ModelBuilder b;
  b.Input("X", {2, 4}).Weight("c", {4}).Weight("d", {4});
  b.Node("Add", {"X", "c"}, {"Y1"}).Output("Y1");
  b.Node("Relu", {"X"}, {"R"});
  b.Node("Add", {"R", "d"}, {"Y2"}).Output("Y2");
  const Model m = b.Build();
  for (const char* name : {"c", "d"}) {
    const WeightInfo w = Find(m, name);
    EXPECT_EQ(w.role, WeightRole::kOther) << name;
    EXPECT_EQ(w.output_axis, -1) << name;
    EXPECT_EQ(w.reduction_axis, -1) << name;
  }
}

TEST(WeightsTest, BatchNormalizationParams) {
  ModelBuilder b;
  b.Input("X", {1, 4, 8, 8}).Weight("scale", {4}).Weight("bias", {4}).Weight("mean", {4});
  b.Weight("var", {4}, {1.0f, 2.0f, 3.0f, 4.0f});
  b.Node("BatchNormalization", {"X", "scale", "bias", "mean", "var"}, {"Y"}).Output("Y");
  const Model m = b.Build();
  for (const char* name : {"scale", "bias", "mean", "var"}) {
    const WeightInfo w = Find(m, name);
    EXPECT_EQ(w.role, WeightRole::kNormParam) << name;
    EXPECT_FALSE(IsLinearWeight(w.role));
  }
}

TEST(WeightsTest, LayerNormalizationParams) {
  ModelBuilder b(17);
  b.Input("X", {2, 5, 8}).Weight("gamma", {8}).Weight("beta", {8});
  b.Node("LayerNormalization", {"X", "gamma", "beta"}, {"Y"}).Attr("axis", int64_t{-1}).Output("Y");
  const Model m = b.Build();
  EXPECT_EQ(Find(m, "gamma").role, WeightRole::kNormParam);
  EXPECT_EQ(Find(m, "beta").role, WeightRole::kNormParam);
}

TEST(WeightsTest, GatherDataIsEmbedding) {
  ModelBuilder b;
  b.Input("ids", {2, 5}, onnx::TensorProto::INT64).Weight("table", {10, 4});
  b.Node("Gather", {"table", "ids"}, {"Y"}).Output("Y");
  const WeightInfo w = Find(b.Build(), "table");
  EXPECT_EQ(w.role, WeightRole::kEmbedding);
  EXPECT_FALSE(IsLinearWeight(w.role));
}

TEST(WeightsTest, GatherIndicesAreNotEmbedding) {
  onnx::TensorProto idx;
  idx.set_name("idx");
  idx.set_data_type(onnx::TensorProto::INT64);
  idx.add_dims(2);
  idx.add_int64_data(0);
  idx.add_int64_data(3);
  ModelBuilder b;
  b.Input("X", {5, 4}).Initializer(idx);
  b.Node("Gather", {"X", "idx"}, {"Y"}).Output("Y");
  EXPECT_EQ(Find(b.Build(), "idx").role, WeightRole::kOther);
}

TEST(WeightsTest, QuantizedWeightBehindDequantizeLinear) {
  ModelBuilder b;
  b.Input("X", {1, 3, 8, 8}).Initializer(Int8Tensor("Wq", {4, 3, 3, 3}));
  b.Weight("scale", {4}, {0.1f, 0.2f, 0.3f, 0.4f}).Initializer(Int8Tensor("zp", {4}));
  b.Node("DequantizeLinear", {"Wq", "scale", "zp"}, {"W"}).Attr("axis", int64_t{0});
  b.Node("Conv", {"X", "W"}, {"Y"}).Output("Y");
  const Model m = b.Build();

  const WeightInfo w = Find(m, "Wq");
  ExpectLinear(w, WeightRole::kConvWeight, 0, 1);
  EXPECT_EQ(w.via, "DequantizeLinear");
  EXPECT_EQ(w.role_node, NodeOf(m, "Y"));
  ASSERT_EQ(w.uses.size(), 1u);
  EXPECT_EQ(w.uses[0].node, NodeOf(m, "W"));
  EXPECT_EQ(w.uses[0].input, 0);
  EXPECT_EQ(Find(m, "scale").role, WeightRole::kQuantParam);
  EXPECT_EQ(Find(m, "zp").role, WeightRole::kQuantParam);
}

TEST(WeightsTest, WeightThroughIdentityAndCast) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W", {4, 8});
  b.Node("Identity", {"W"}, {"W1"});
  b.Node("Cast", {"W1"}, {"W2"}).Attr("to", int64_t{onnx::TensorProto::FLOAT});
  b.Node("Gemm", {"X", "W2"}, {"Y"}).Attr("transB", int64_t{1}).Output("Y");
  const Model m = b.Build();
  const WeightInfo w = Find(m, "W");
  ExpectLinear(w, WeightRole::kGemmWeight, 0, 1);
  EXPECT_EQ(w.via, "Identity");
  EXPECT_EQ(w.role_node, NodeOf(m, "Y"));
}

TEST(WeightsTest, SharedByGemmsThatAgree) {
  ModelBuilder b;
  b.Input("X1", {2, 8}).Input("X2", {3, 8}).Weight("W", {4, 8});
  b.Node("Gemm", {"X1", "W"}, {"Y1"}).Attr("transB", int64_t{1}).Output("Y1");
  b.Node("Gemm", {"X2", "W"}, {"Y2"}).Attr("transB", int64_t{1}).Output("Y2");
  const Model m = b.Build();
  const WeightInfo w = Find(m, "W");
  ExpectLinear(w, WeightRole::kGemmWeight, 0, 1);
  ASSERT_EQ(w.uses.size(), 2u);
  EXPECT_EQ(w.uses[0].node, NodeOf(m, "Y1"));
  EXPECT_EQ(w.uses[1].node, NodeOf(m, "Y2"));
}

TEST(WeightsTest, SharedByGemmsThatDisagreeConflicts) {
  // Pruning along either axis would break the other reader.
  ModelBuilder b;
  b.Input("X1", {2, 8}).Input("X2", {3, 8}).Weight("W", {8, 8});
  b.Node("Gemm", {"X1", "W"}, {"Y1"}).Attr("transB", int64_t{1}).Output("Y1");
  b.Node("Gemm", {"X2", "W"}, {"Y2"}).Attr("transB", int64_t{0}).Output("Y2");
  const WeightInfo w = Find(b.Build(), "W");
  EXPECT_TRUE(w.conflicting);
  EXPECT_EQ(w.role, WeightRole::kOther);
  EXPECT_FALSE(IsLinearWeight(w.role));
  EXPECT_EQ(w.uses.size(), 2u);
}

TEST(WeightsTest, SharedByConvsWithDifferentGroupsConflicts) {
  ModelBuilder b;
  b.Input("X", {1, 4, 8, 8}).Weight("W", {4, 2, 3, 3});
  b.Node("Conv", {"X", "W"}, {"Y1"}).Attr("group", int64_t{2}).Output("Y1");
  b.Node("Conv", {"X", "W"}, {"Y2"}).Attr("group", int64_t{1}).Output("Y2");
  EXPECT_TRUE(Find(b.Build(), "W").conflicting);
}

// Every reader is examined, however many there are.
TEST(WeightsTest, ConflictInTheSixtyFifthReaderIsSeen) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W", {8, 8});
  for (int i = 0; i < 65; ++i) {
    const std::string y = std::string(1, 'Y') + std::to_string(i);
    b.Node("Gemm", {"X", "W"}, {y}).Attr("transB", int64_t{i < 64 ? 1 : 0}).Output(y);
  }
  const WeightInfo w = Find(b.Build(), "W");
  EXPECT_EQ(w.uses.size(), 65u);
  EXPECT_TRUE(w.conflicting);
  EXPECT_EQ(w.role, WeightRole::kOther);
}

TEST(WeightsTest, ConstantNodeTensorFeedingMatMul) {
  ModelBuilder b;
  b.Input("X", {2, 8});
  b.Node("Constant", {}, {"W"}).Attr("value", FloatTensor("", {8, 4}, testing::RandomValues(32, 3)));
  b.Node("MatMul", {"X", "W"}, {"Y"}).Output("Y");
  const Model m = b.Build();
  const TensorEntry* e = m.FindTensor("W");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->source, TensorSource::kConstantNode);
  EXPECT_EQ(e->node_index, NodeOf(m, "W"));
  const WeightInfo w = Find(m, "W");
  ExpectLinear(w, WeightRole::kMatMulWeight, 1, 0);
  EXPECT_EQ(w.role_node, NodeOf(m, "Y"));
}

TEST(WeightsTest, UnreadInitializerIsUnused) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W", {8, 4}).Weight("orphan", {3});
  b.Node("MatMul", {"X", "W"}, {"Y"}).Output("Y");
  const WeightInfo w = Find(b.Build(), "orphan");
  EXPECT_EQ(w.role, WeightRole::kUnused);
  EXPECT_TRUE(w.uses.empty());
  EXPECT_EQ(w.role_node, -1);
}

// A weight read only inside an If branch is in use: removing it would break the model.
TEST(WeightsTest, InitializerReadInsideSubgraphIsNotUnused) {
  ModelBuilder b;
  b.Input("cond", {}, onnx::TensorProto::BOOL).Input("X", {2, 8}).Weight("W", {8, 4});
  b.Node("If", {"cond"}, {"Y"}).Output("Y");
  onnx::ModelProto proto = b.Proto();
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* a = proto.mutable_graph()->mutable_node(0)->add_attribute();
    a->set_name(branch);
    a->set_type(onnx::AttributeProto::GRAPH);
    onnx::GraphProto* body = a->mutable_g();
    body->set_name(branch);
    onnx::NodeProto* mm = body->add_node();
    mm->set_op_type("MatMul");
    mm->add_input("X");
    mm->add_input("W");
    mm->add_output(std::string(branch) + "_Y");
    body->add_output()->set_name(std::string(branch) + "_Y");
  }
  auto m = Model::FromProto(proto);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_NE(Find(*m, "W").role, WeightRole::kUnused);
}

TEST(WeightsTest, InitializerThatIsAGraphOutputIsNotUnused) {
  ModelBuilder b;
  b.Input("X", {2}).Weight("K", {2});
  b.Node("Identity", {"X"}, {"Y"}).Output("Y").Output("K");
  EXPECT_EQ(Find(b.Build(), "K").role, WeightRole::kOther);
}

TEST(WeightsTest, AnalysisFollowsTensorOrder) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W2", {8, 4}).Weight("W1", {4, 4});
  b.Node("Constant", {}, {"C"}).Attr("value", FloatTensor("", {4}, {1, 2, 3, 4}));
  b.Node("MatMul", {"X", "W2"}, {"H"});
  b.Node("MatMul", {"H", "W1"}, {"H2"});
  b.Node("Add", {"H2", "C"}, {"Y"}).Output("Y");
  const Model m = b.Build();
  const auto infos = AnalyzeWeights(m);
  ASSERT_EQ(infos.size(), m.tensors().size());
  for (size_t i = 0; i < infos.size(); ++i) EXPECT_EQ(infos[i].name, m.tensors()[i].name) << i;
  EXPECT_EQ(infos.back().name, "C");
  EXPECT_EQ(infos.back().role, WeightRole::kBias);
}

TEST(WeightsTest, RoleNamesAreDistinct) {
  const WeightRole roles[] = {WeightRole::kConvWeight, WeightRole::kConvTransposeWeight, WeightRole::kGemmWeight,
                              WeightRole::kMatMulWeight, WeightRole::kBias, WeightRole::kNormParam,
                              WeightRole::kEmbedding, WeightRole::kQuantParam, WeightRole::kOther,
                              WeightRole::kUnused};
  std::set<std::string_view> names;
  for (WeightRole r : roles) names.insert(WeightRoleName(r));
  EXPECT_EQ(names.size(), std::size(roles));
  EXPECT_EQ(WeightRoleName(WeightRole::kConvWeight), "conv_weight");
}

TEST(WeightsTest, LinearRoles) {
  EXPECT_TRUE(IsLinearWeight(WeightRole::kConvWeight));
  EXPECT_TRUE(IsLinearWeight(WeightRole::kConvTransposeWeight));
  EXPECT_TRUE(IsLinearWeight(WeightRole::kGemmWeight));
  EXPECT_TRUE(IsLinearWeight(WeightRole::kMatMulWeight));
  for (WeightRole r : {WeightRole::kBias, WeightRole::kNormParam, WeightRole::kEmbedding, WeightRole::kQuantParam,
                       WeightRole::kOther, WeightRole::kUnused}) {
    EXPECT_FALSE(IsLinearWeight(r)) << WeightRoleName(r);
  }
}

TEST(IndexGraphTest, ProducersAndConsumers) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W", {8, 8}).Weight("max", {}, {6.0f});
  b.Node("MatMul", {"X", "W"}, {"H"});
  b.Node("Clip", {"H", "", "max"}, {"R"});
  b.Node("Add", {"R", "H"}, {"Y"}).Output("Y");
  const onnx::ModelProto proto = b.Proto();
  const GraphIndex index = IndexGraph(proto.graph());

  EXPECT_EQ(index.producer.at("H"), 0);
  EXPECT_EQ(index.producer.at("R"), 1);
  EXPECT_EQ(index.producer.at("Y"), 2);
  EXPECT_EQ(index.producer.count("X"), 0u);  // graph inputs and initializers have no producer
  EXPECT_EQ(index.producer.count("W"), 0u);

  const auto& h = index.consumers.at("H");
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h[0].node, 1);
  EXPECT_EQ(h[0].input, 0);
  EXPECT_EQ(h[1].node, 2);
  EXPECT_EQ(h[1].input, 1);
  const auto& max = index.consumers.at("max");
  ASSERT_EQ(max.size(), 1u);
  EXPECT_EQ(max[0].input, 2);
  EXPECT_EQ(index.consumers.count(""), 0u);  // an omitted optional input is no value
  EXPECT_EQ(index.consumers.count("Y"), 0u);
}

TEST(ModelFromProtoTest, RejectsDuplicateInitializer) {
  ModelBuilder b;
  b.Input("X", {2, 8}).Weight("W", {8, 4}).Weight("W", {8, 4});
  b.Node("MatMul", {"X", "W"}, {"Y"}).Output("Y");
  auto m = Model::FromProto(b.Proto());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(m.status().message().find("'W'"), std::string::npos) << m.status().message();
}

TEST(ModelFromProtoTest, RejectsConstantNodeShadowingInitializer) {
  ModelBuilder b;
  b.Input("X", {2, 4}).Weight("C", {4});
  b.Node("Constant", {}, {"C"}).Attr("value", FloatTensor("", {4}, {1, 2, 3, 4}));
  b.Node("Add", {"X", "C"}, {"Y"}).Output("Y");
  auto m = Model::FromProto(b.Proto());
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("'C'"), std::string::npos) << m.status().message();
}

}  // namespace
}  // namespace modelpress
