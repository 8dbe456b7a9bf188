// The executor's graph handling: ordering, refusals that name the node,
// observation of every tensor, freeing of intermediates, input checks.
#include <gtest/gtest.h>

#include <map>

#include "run_graph.h"

namespace modelpress::runtime {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

bool Contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Executor, NodesOutOfOrderAreSorted) {
  ModelBuilder mb;
  mb.Input("x", {2});
  mb.Node("Neg", {"a"}, {"y"});   // reads a value produced by the next node
  mb.Node("Relu", {"x"}, {"a"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2}, std::vector<float>{-1.5f, 2.0f})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].values<float>()[0], -0.0f);
  EXPECT_EQ((*out)[0].values<float>()[1], -2.0f);
}

TEST(Executor, CycleIsCorruptAndNamesANode) {
  ModelBuilder mb;
  mb.Input("x", {2});
  mb.Node("Add", {"x", "b"}, {"a"});
  mb.Node("Relu", {"a"}, {"b"});
  mb.Output("b");
  auto m = Model::FromProto(mb.Proto());
  ASSERT_TRUE(m.ok());
  auto e = Executor::Create(*m);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kCorrupt);
  EXPECT_TRUE(Contains(e.status().message(), "cycle")) << e.status().message();
  EXPECT_TRUE(Contains(e.status().message(), "node '")) << e.status().message();
}

TEST(Executor, MissingProducerNamesNodeAndValue) {
  ModelBuilder mb;
  mb.Input("x", {2});
  mb.Node("Add", {"x", "nowhere"}, {"y"});
  mb.Output("y");
  auto m = Model::FromProto(mb.Proto());
  ASSERT_TRUE(m.ok());
  auto e = Executor::Create(*m);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kCorrupt);
  EXPECT_TRUE(Contains(e.status().message(), "Add_1")) << e.status().message();
  EXPECT_TRUE(Contains(e.status().message(), "'nowhere'")) << e.status().message();
}

TEST(Executor, UnsupportedOpNamesOpAndNode) {
  ModelBuilder mb;
  mb.Input("x", {2});
  mb.Node("NonMaxSuppression", {"x"}, {"y"});
  mb.Output("y");
  auto m = Model::FromProto(mb.Proto());
  ASSERT_TRUE(m.ok());
  auto e = Executor::Create(*m);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kUnsupported);
  EXPECT_TRUE(Contains(e.status().message(), "NonMaxSuppression")) << e.status().message();
  EXPECT_TRUE(Contains(e.status().message(), "NonMaxSuppression_1")) << e.status().message();
}

TEST(Executor, InputDtypeAndShapeAreChecked) {
  ModelBuilder mb;
  mb.Input("x", {-1, 3});
  mb.Node("Relu", {"x"}, {"y"});
  mb.Output("y");
  auto m = Model::FromProto(mb.Proto());
  ASSERT_TRUE(m.ok());
  auto e = Executor::Create(*m);
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->Run({Tensor::FromFloats({5, 3}, RandomValues(15, 1))}).ok());  // any batch
  auto wrong_dim = e->Run({Tensor::FromFloats({5, 4}, RandomValues(20, 1))});
  ASSERT_FALSE(wrong_dim.ok());
  EXPECT_TRUE(Contains(wrong_dim.status().message(), "input 'x'")) << wrong_dim.status().message();
  std::vector<int64_t> ints(15, 1);
  auto wrong_type = e->Run({Tensor::FromInt64s({5, 3}, ints)});
  ASSERT_FALSE(wrong_type.ok());
  EXPECT_TRUE(Contains(wrong_type.status().message(), "int64")) << wrong_type.status().message();
  EXPECT_FALSE(e->Run({}).ok());
}

// A chain of 24 element-wise nodes: the observer sees the input and every
// node output in order with the right values, and at most two intermediates
// are ever alive.
TEST(Executor, ObserverSeesEveryTensorAndMemoryIsBoundedByLiveSet) {
  const int kNodes = 24;
  const int64_t kSize = 4096;
  ModelBuilder mb;
  mb.Input("x", {kSize});
  std::string prev = "x";
  for (int i = 0; i < kNodes; ++i) {
    const std::string next = "t" + std::to_string(i);
    mb.Node(i % 2 ? "Relu" : "Neg", {prev}, {next});
    prev = next;
  }
  mb.Output(prev);
  auto m = Model::FromProto(mb.Proto());
  ASSERT_TRUE(m.ok());
  auto e = Executor::Create(*m);
  ASSERT_TRUE(e.ok());
  const auto x = RandomValues(kSize, 3);
  std::vector<std::string> seen;
  std::map<std::string, double> sums;
  auto observer = [&](const std::string& name, const Tensor& t) {
    seen.push_back(name);
    double s = 0;
    for (float v : t.values<float>()) s += v;
    sums[name] = s;
  };
  RunStats stats;
  auto out = e->Run({Tensor::FromFloats({kSize}, x)}, observer, &stats);
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ(seen.size(), static_cast<size_t>(kNodes + 1));
  EXPECT_EQ(seen[0], "x");
  EXPECT_EQ(seen.back(), prev);
  // t0 = -x, t1 = relu(-x): sum of max(-x, 0).
  double want = 0;
  for (float v : x) want += std::max(-v, 0.0f);
  EXPECT_NEAR(sums["t1"], want, 1e-3);
  EXPECT_EQ(stats.nodes_run, kNodes);
  const int64_t one = kSize * 4;
  EXPECT_LE(stats.peak_live_bytes, 2 * one);
  EXPECT_GE(stats.peak_live_bytes, one);
}

TEST(Executor, Float16WeightsAreWidened) {
  onnx::TensorProto w;
  w.set_name("w");
  w.set_data_type(onnx::TensorProto::FLOAT16);
  w.add_dims(3);
  const float vals[3] = {0.5f, -2.0f, 1.25f};
  for (float v : vals) w.add_int32_data(FloatToHalf(v));
  ModelBuilder mb;
  mb.Input("x", {3}).Initializer(w);
  mb.Node("Cast", {"w"}, {"wf"}).Attr("to", int64_t{onnx::TensorProto::FLOAT});
  mb.Node("Mul", {"x", "wf"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({3}, std::vector<float>{2, 3, 4})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_EQ((*out)[0].values<float>()[0], 1.0f);
  EXPECT_EQ((*out)[0].values<float>()[1], -6.0f);
  EXPECT_EQ((*out)[0].values<float>()[2], 5.0f);
}

TEST(Executor, ConstantNodesAndUnusedOptionalOutputs) {
  ModelBuilder mb;
  mb.Input("x", {2, 3});
  mb.Node("Constant", {}, {"c"}).Attr("value", testing::FloatTensor("c", {3}, {1, 2, 3}));
  mb.Node("Add", {"x", "c"}, {"s"});
  mb.Node("Dropout", {"s"}, {"y", "mask"});  // mask read by nobody
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 3}, std::vector<float>{0, 0, 0, 1, 1, 1})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const std::vector<float> want = {1, 2, 3, 2, 3, 4};
  EXPECT_EQ(std::vector<float>((*out)[0].values<float>().begin(), (*out)[0].values<float>().end()), want);
}

TEST(Executor, SupportedOpsCoverTheIssueList) {
  const auto ops = SupportedOps();
  for (const char* op : {"Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf",
                         "Exp", "Log", "Neg", "Abs", "Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
                         "Tanh", "Softmax", "LogSoftmax", "Gelu", "MaxPool", "AveragePool", "GlobalAveragePool",
                         "BatchNormalization", "LayerNormalization", "ReduceMean", "ReduceSum", "Flatten", "Reshape",
                         "Transpose", "Concat", "Split", "Slice", "Gather", "Shape", "Unsqueeze", "Squeeze", "Expand",
                         "Where", "Equal", "Cast", "Constant", "ConstantOfShape", "Identity", "Dropout", "Pad",
                         "QuantizeLinear", "DequantizeLinear"}) {
    EXPECT_TRUE(std::find(ops.begin(), ops.end(), op) != ops.end()) << op;
  }
}

}  // namespace
}  // namespace modelpress::runtime
