// Element-wise kernels: numpy broadcasting, comparisons and Where,
// activations against their formulas, Softmax along an axis.
#include <gtest/gtest.h>

#include <cmath>

#include "run_graph.h"

namespace modelpress::runtime {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

TEST(Elementwise, BroadcastingFollowsNumpy) {
  // [2, 1, 3] op [4, 1] -> [2, 4, 3]
  const auto a = RandomValues(6, 1), b = RandomValues(4, 2);
  for (const char* op : {"Add", "Sub", "Mul", "Div"}) {
    SCOPED_TRACE(op);
    ModelBuilder mb;
    mb.Input("a", {2, 1, 3}).Input("b", {4, 1});
    mb.Node(op, {"a", "b"}, {"y"});
    mb.Output("y");
    auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 1, 3}, a), Tensor::FromFloats({4, 1}, b)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ((*out)[0].shape(), (std::vector<int64_t>{2, 4, 3}));
    const float* y = (*out)[0].data<float>();
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 3; ++k) {
          const float x = a[i * 3 + k], z = b[j];
          const float want = op[0] == 'A' ? x + z : op[0] == 'S' ? x - z : op[0] == 'M' ? x * z : x / z;
          EXPECT_EQ(y[(i * 4 + j) * 3 + k], want);
        }
  }
}

TEST(Elementwise, EqualAndWhereSelect) {
  ModelBuilder mb;
  mb.Input("a", {2, 3}, onnx::TensorProto::INT64).Input("b", {3}, onnx::TensorProto::INT64);
  mb.Input("x", {2, 3}).Input("y", {1});
  mb.Node("Equal", {"a", "b"}, {"c"});
  mb.Node("Where", {"c", "x", "y"}, {"z"});
  mb.Output("z");
  const std::vector<int64_t> a = {1, 2, 3, 4, 2, 6}, b = {4, 2, 3};
  const auto x = RandomValues(6, 3);
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromInt64s({2, 3}, a), Tensor::FromInt64s({3}, b),
                                         Tensor::FromFloats({2, 3}, x), Tensor::FromFloats({1}, std::vector<float>{-9})});
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (int i = 0; i < 6; ++i) EXPECT_EQ((*out)[0].data<float>()[i], a[i] == b[i % 3] ? x[i] : -9.0f) << i;
}

TEST(Elementwise, ActivationsMatchFormulas) {
  const auto x = RandomValues(64, 4);
  struct Case {
    const char* op;
    double (*f)(double);
  };
  const Case cases[] = {
      {"Sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"Tanh", [](double v) { return std::tanh(v); }},
      {"Erf", [](double v) { return std::erf(v); }},
      {"HardSwish", [](double v) { return v * std::min(std::max(v + 3, 0.0), 6.0) / 6; }},
      {"HardSigmoid", [](double v) { return std::min(std::max(0.2 * v + 0.5, 0.0), 1.0); }},
      {"Softplus", [](double v) { return std::log(1 + std::exp(v)); }},
      {"Abs", [](double v) { return std::abs(v); }},
      {"Exp", [](double v) { return std::exp(v); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.op);
    ModelBuilder mb(17);
    mb.Input("x", {64});
    mb.Node(c.op, {"x"}, {"y"});
    mb.Output("y");
    auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({64}, x)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    for (int i = 0; i < 64; ++i) EXPECT_NEAR((*out)[0].data<float>()[i], c.f(x[i]), 1e-6) << x[i];
  }
}

TEST(Elementwise, GeluAtOpset20AndClipWithInputs) {
  const auto x = RandomValues(32, 5);
  ModelBuilder mb(20);
  mb.Input("x", {32}).Weight("lo", {}, {-0.25f}).Weight("hi", {}, {0.5f});
  mb.Node("Gelu", {"x"}, {"g"});
  mb.Node("Clip", {"x", "lo", "hi"}, {"c"});
  mb.Output("g").Output("c");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({32}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (int i = 0; i < 32; ++i) {
    EXPECT_NEAR((*out)[0].data<float>()[i], 0.5 * x[i] * (1 + std::erf(x[i] / std::sqrt(2.0))), 1e-6);
    EXPECT_EQ((*out)[1].data<float>()[i], std::min(std::max(x[i], -0.25f), 0.5f));
  }
}

TEST(Elementwise, GeluBeforeOpset20IsUnsupported) {
  ModelBuilder mb(17);
  mb.Input("x", {4});
  mb.Node("Gelu", {"x"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({4}, RandomValues(4, 1))});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kUnsupported);
}

TEST(Softmax, Opset13ReducesOneAxisOpset11FlattensFromIt) {
  const auto x = RandomValues(2 * 3 * 4, 6);
  for (int64_t opset : {11, 13}) {
    SCOPED_TRACE(opset);
    ModelBuilder mb(opset);
    mb.Input("x", {2, 3, 4});
    mb.Node("Softmax", {"x"}, {"y"}).Attr("axis", int64_t{1});
    mb.Output("y");
    auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 3, 4}, x)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    const float* y = (*out)[0].data<float>();
    for (int i = 0; i < 2; ++i) {
      if (opset == 13) {
        for (int k = 0; k < 4; ++k) {
          double sum = 0;
          for (int j = 0; j < 3; ++j) sum += std::exp(x[(i * 3 + j) * 4 + k]);
          for (int j = 0; j < 3; ++j) EXPECT_NEAR(y[(i * 3 + j) * 4 + k], std::exp(x[(i * 3 + j) * 4 + k]) / sum, 1e-6);
        }
      } else {
        double sum = 0;
        for (int j = 0; j < 12; ++j) sum += std::exp(x[i * 12 + j]);
        for (int j = 0; j < 12; ++j) EXPECT_NEAR(y[i * 12 + j], std::exp(x[i * 12 + j]) / sum, 1e-6);
      }
    }
  }
}

TEST(Elementwise, IncompatibleShapesNameBoth) {
  ModelBuilder mb;
  mb.Input("a", {2, 3}).Input("b", {4});
  mb.Node("Add", {"a", "b"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 3}, RandomValues(6, 1)),
                                         Tensor::FromFloats({4}, RandomValues(4, 2))});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("[2, 3] and [4]"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace modelpress::runtime
