// Data-movement kernels against index arithmetic written from the ONNX
// definitions: Transpose, Slice (negative steps, clamping), Pad modes,
// Gather with negative indices, Split, Expand, Reshape.
#include <gtest/gtest.h>

#include "run_graph.h"

namespace modelpress::runtime {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

onnx::TensorProto Ints(const std::string& name, std::vector<int64_t> v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(v.size()));
  for (int64_t x : v) t.add_int64_data(x);
  return t;
}

TEST(Shape, TransposeMovesEveryElement) {
  const auto x = RandomValues(2 * 3 * 4, 1);
  ModelBuilder mb;
  mb.Input("x", {2, 3, 4});
  mb.Node("Transpose", {"x"}, {"y"}).Attr("perm", std::vector<int64_t>{2, 0, 1});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 3, 4}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ((*out)[0].shape(), (std::vector<int64_t>{4, 2, 3}));
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) EXPECT_EQ((*out)[0].data<float>()[(k * 2 + i) * 3 + j], x[(i * 3 + j) * 4 + k]);
}

TEST(Shape, SliceWithNegativeStepAndClampedEnds) {
  const auto x = RandomValues(5 * 6, 2);
  ModelBuilder mb;
  mb.Input("x", {5, 6}).Initializer(Ints("s", {-1, 1})).Initializer(Ints("e", {-100, 1000}));
  mb.Initializer(Ints("a", {0, 1})).Initializer(Ints("st", {-2, 2}));
  mb.Node("Slice", {"x", "s", "e", "a", "st"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({5, 6}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  // rows 4, 2, 0; columns 1, 3, 5
  ASSERT_EQ((*out)[0].shape(), (std::vector<int64_t>{3, 3}));
  const int rows[] = {4, 2, 0}, cols[] = {1, 3, 5};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ((*out)[0].data<float>()[i * 3 + j], x[rows[i] * 6 + cols[j]]);
}

TEST(Shape, PadModes) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6};  // [2, 3]
  const std::map<std::string, std::vector<float>> want = {
      // pads: rows (1, 0), cols (2, 1) -> [3, 6]
      {"constant", {9, 9, 9, 9, 9, 9, 9, 9, 1, 2, 3, 9, 9, 9, 4, 5, 6, 9}},
      {"edge", {1, 1, 1, 2, 3, 3, 1, 1, 1, 2, 3, 3, 4, 4, 4, 5, 6, 6}},
      {"reflect", {6, 5, 4, 5, 6, 5, 3, 2, 1, 2, 3, 2, 6, 5, 4, 5, 6, 5}},
  };
  for (const auto& [mode, expected] : want) {
    SCOPED_TRACE(mode);
    ModelBuilder mb;
    mb.Input("x", {2, 3}).Initializer(Ints("p", {1, 2, 0, 1})).Weight("v", {}, {9.0f});
    mb.Node("Pad", {"x", "p", "v"}, {"y"});
    mb.Output("y");
    auto proto = mb.Proto();
    test::StringAttr(proto, "mode", mode);
    auto out = test::RunGraph(proto, {Tensor::FromFloats({2, 3}, x)});
    ASSERT_TRUE(out.ok()) << out.status().message();
    ASSERT_EQ((*out)[0].shape(), (std::vector<int64_t>{3, 6}));
    EXPECT_EQ(std::vector<float>((*out)[0].values<float>().begin(), (*out)[0].values<float>().end()), expected);
  }
}

TEST(Shape, GatherSplitConcatExpandReshape) {
  const auto x = RandomValues(4 * 3, 3);
  ModelBuilder mb;
  mb.Input("x", {4, 3}).Initializer(Ints("idx", {-1, 0, 2})).Initializer(Ints("shape", {2, 1, 3}));
  mb.Initializer(Ints("rs", {0, -1}));
  mb.Node("Gather", {"x", "idx"}, {"g"}).Attr("axis", int64_t{0});       // rows 3, 0, 2
  mb.Node("Split", {"x"}, {"s0", "s1"}).Attr("axis", int64_t{0});       // two [2, 3]
  mb.Node("Concat", {"s1", "s0"}, {"c"}).Attr("axis", int64_t{0});      // rows 2, 3, 0, 1
  mb.Node("Expand", {"s0", "shape"}, {"e"});                             // [2, 2, 3]
  mb.Node("Reshape", {"x", "rs"}, {"r"});                                // [4, 3]
  mb.Output("g").Output("c").Output("e").Output("r");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({4, 3}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  const int g_rows[] = {3, 0, 2}, c_rows[] = {2, 3, 0, 1};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ((*out)[0].data<float>()[i * 3 + j], x[g_rows[i] * 3 + j]);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j) EXPECT_EQ((*out)[1].data<float>()[i * 3 + j], x[c_rows[i] * 3 + j]);
  ASSERT_EQ((*out)[2].shape(), (std::vector<int64_t>{2, 2, 3}));
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) EXPECT_EQ((*out)[2].data<float>()[(b * 2 + i) * 3 + j], x[i * 3 + j]);
  EXPECT_EQ((*out)[3].shape(), (std::vector<int64_t>{4, 3}));
}

TEST(Shape, GatherIndexOutOfRangeIsAnError) {
  ModelBuilder mb;
  mb.Input("x", {4, 3}).Initializer(Ints("idx", {4}));
  mb.Node("Gather", {"x", "idx"}, {"g"});
  mb.Output("g");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({4, 3}, RandomValues(12, 1))});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("out of range"), std::string::npos) << out.status().message();
}

}  // namespace
}  // namespace modelpress::runtime
