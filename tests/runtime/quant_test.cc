// QuantizeLinear/DequantizeLinear as the ONNX spec defines them: round half
// to even, saturation, per-channel scales along `axis`.
#include <gtest/gtest.h>

#include <cmath>

#include "run_graph.h"

namespace modelpress::runtime {
namespace {

using testing::ModelBuilder;

onnx::TensorProto Scalar8(const std::string& name, int32_t type, int v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(type);
  t.add_int32_data(v);
  return t;
}

TEST(Quant, RoundsHalfToEvenAndSaturates) {
  // x / 0.5: 0.5 -> 1.0, 1.25 -> 2.5 -> 2 (even), 1.75 -> 3.5 -> 4, -1.25 -> -2.5 -> -2, 200 -> clamp
  const std::vector<float> x = {0.5f, 1.25f, 1.75f, -1.25f, 200.0f, -200.0f};
  ModelBuilder mb;
  mb.Input("x", {6}).Weight("s", {}, {0.5f}).Initializer(Scalar8("zp", onnx::TensorProto::UINT8, 10));
  mb.Initializer(Scalar8("zi", onnx::TensorProto::INT8, 0));
  mb.Node("QuantizeLinear", {"x", "s", "zp"}, {"qu"});
  mb.Node("QuantizeLinear", {"x", "s", "zi"}, {"qi"});
  mb.Node("DequantizeLinear", {"qu", "s", "zp"}, {"du"});
  mb.Output("qu", onnx::TensorProto::UINT8).Output("qi", onnx::TensorProto::INT8).Output("du");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({6}, x)});
  ASSERT_TRUE(out.ok()) << out.status().message();
  ASSERT_EQ((*out)[0].dtype(), DType::kUint8);
  ASSERT_EQ((*out)[1].dtype(), DType::kInt8);
  const int want_u[] = {11, 12, 14, 8, 255, 0}, want_i[] = {1, 2, 4, -2, 127, -128};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ((*out)[0].data<uint8_t>()[i], want_u[i]) << i;
    EXPECT_EQ((*out)[1].data<int8_t>()[i], want_i[i]) << i;
    EXPECT_EQ((*out)[2].data<float>()[i], (want_u[i] - 10) * 0.5f) << i;
  }
}

TEST(Quant, PerChannelDequantizeAlongAxis) {
  onnx::TensorProto w;
  w.set_name("w");
  w.set_data_type(onnx::TensorProto::INT8);
  for (int64_t d : {2, 3}) w.add_dims(d);
  const int vals[] = {-127, 0, 5, 127, -3, 64};
  for (int v : vals) w.add_int32_data(v);
  ModelBuilder mb;
  mb.Input("x", {2, 3}).Initializer(w).Weight("s", {2}, {0.1f, 2.0f});
  mb.Node("DequantizeLinear", {"w", "s"}, {"wf"}).Attr("axis", int64_t{0});
  mb.Node("Add", {"x", "wf"}, {"y"});
  mb.Output("y");
  auto out = test::RunGraph(mb.Proto(), {Tensor::FromFloats({2, 3}, std::vector<float>(6, 0.0f))});
  ASSERT_TRUE(out.ok()) << out.status().message();
  for (int i = 0; i < 6; ++i) EXPECT_FLOAT_EQ((*out)[0].data<float>()[i], vals[i] * (i < 3 ? 0.1f : 2.0f)) << i;
}

}  // namespace
}  // namespace modelpress::runtime
