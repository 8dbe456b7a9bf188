// The QDQ rewrite on graphs built in code: structure, ONNX's checker, and
// the executor computing the same function within quantization error.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "modelpress/graph.h"
#include "modelpress/quant.h"
#include "modelpress/runtime.h"
#include "support/model_builder.h"

namespace modelpress::quant {
namespace {

using testing::ModelBuilder;
using testing::RandomValues;

std::map<std::string, int> OpCounts(const Model& m) {
  std::map<std::string, int> c;
  for (const auto& n : m.proto().graph().node()) ++c[n.op_type()];
  return c;
}

const onnx::NodeProto* NodeProducing(const Model& m, const std::string& out) {
  for (const auto& n : m.proto().graph().node()) {
    for (const auto& o : n.output()) {
      if (o == out) return &n;
    }
  }
  return nullptr;
}

int64_t AxisOf(const onnx::NodeProto& n) {
  for (const auto& a : n.attribute()) {
    if (a.name() == "axis") return a.i();
  }
  return -1;
}

// ONNX's checker wants a shape on every graph output; ModelBuilder declares
// only the type. The outputs here are [N, ...] of the given rank.
Model WithOutputRank(const ModelBuilder& b, int rank) {
  onnx::ModelProto p = b.Proto();
  for (auto& o : *p.mutable_graph()->mutable_output()) {
    auto* s = o.mutable_type()->mutable_tensor_type()->mutable_shape();
    for (int d = 0; d < rank; ++d) s->add_dim()->set_dim_param(d == 0 ? "N" : "d" + std::to_string(d));
  }
  auto m = Model::FromProto(std::move(p));
  EXPECT_TRUE(m.ok()) << m.status().message();
  return std::move(m).value();
}

// Runs a model once on `input` and returns the first output as floats.
std::vector<float> RunOnce(const Model& m, const runtime::Tensor& input) {
  auto e = runtime::Executor::Create(m);
  EXPECT_TRUE(e.ok()) << e.status().message();
  if (!e.ok()) return {};
  auto out = e->Run({input});
  EXPECT_TRUE(out.ok()) << out.status().message();
  if (!out.ok()) return {};
  auto v = (*out)[0].values<float>();
  return {v.begin(), v.end()};
}

// ||a - b|| / ||a||
double RelativeError(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(a[i]) * a[i];
  }
  return std::sqrt(num / den);
}

Model Mlp(int64_t opset = 13) {
  return WithOutputRank(ModelBuilder(opset)
      .Input("x", {-1, 8})
      .Weight("W1", {6, 8})
      .Weight("b1", {6})
      .Node("Gemm", {"x", "W1", "b1"}, {"h"})
      .Attr("transB", int64_t{1})
      .Node("Relu", {"h"}, {"r"})
      .Weight("W2", {6, 4})
      .Node("MatMul", {"r", "W2"}, {"y"})
      .Output("y"),
      2);
}

// Calibration batches drawn from a fixed-seed generator, built on demand.
CalibrationData RandomData(std::vector<int64_t> sample_shape, int64_t batches, int64_t batch) {
  CalibrationData d;
  d.batches = batches;
  d.samples = batches * batch;
  d.source = "<random>";
  d.batch = [sample_shape, batch](int64_t b) -> Result<std::vector<runtime::Tensor>> {
    std::vector<int64_t> shape = sample_shape;
    shape.insert(shape.begin(), batch);
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    auto v = RandomValues(static_cast<size_t>(n), static_cast<uint32_t>(100 + b));
    MP_ASSIGN_OR_RETURN(runtime::Tensor t, runtime::Tensor::Copy(DType::kFloat32, shape, v.data()));
    return std::vector<runtime::Tensor>{t};
  };
  return d;
}

TEST(QuantRewrite, WeightOnlyPerChannel) {
  Model m = Mlp();
  const Model original = Mlp();
  auto r = Quantize(m, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto check = CheckModel(m);
  ASSERT_TRUE(check.ok()) << check.status().message();
  EXPECT_EQ(OpCounts(m)["DequantizeLinear"], 2);
  EXPECT_EQ(OpCounts(m)["QuantizeLinear"], 0);
  // The float weights are gone; int8 copies sit behind DequantizeLinear on the output axis.
  EXPECT_EQ(m.FindTensor("W1"), nullptr);
  EXPECT_EQ(m.FindTensor("W2"), nullptr);
  ASSERT_NE(m.FindTensor("W1_quantized"), nullptr);
  EXPECT_EQ(m.View("W1_quantized")->dtype(), DType::kInt8);
  EXPECT_EQ(m.View("W1_scale")->size(), 6);
  EXPECT_EQ(m.View("W2_scale")->size(), 4);
  EXPECT_EQ(AxisOf(*NodeProducing(m, "W1_dequantized")), 0);  // Gemm transB=1: [out, in]
  EXPECT_EQ(AxisOf(*NodeProducing(m, "W2_dequantized")), 1);  // MatMul: [in, out]
  EXPECT_NE(m.FindTensor("b1"), nullptr);                     // weight-only keeps the bias float
  // Graph roles still see the weights through DequantizeLinear.
  for (const WeightInfo& w : AnalyzeWeights(m)) {
    if (w.name == "W1_quantized") {
      EXPECT_EQ(w.role, WeightRole::kGemmWeight);
    }
    if (w.name == "W2_quantized") {
      EXPECT_EQ(w.role, WeightRole::kMatMulWeight);
    }
  }
  // Report: two weight rows with real SQNR, 4x smaller weights.
  ASSERT_EQ(r->tensors.size(), 2u);
  EXPECT_GT(r->tensors[0].sqnr_db, 30.0);
  EXPECT_EQ(r->weight_bytes_before, (48u + 24u) * 4u);
  // The same function within int8 weight error.
  const auto x = RandomValues(5 * 8, 9);
  const auto in = runtime::Tensor::FromFloats({5, 8}, x);
  EXPECT_LT(RelativeError(RunOnce(original, in), RunOnce(m, in)), 0.02);
}

TEST(QuantRewrite, PerTensorHasNoAxis) {
  Model m = Mlp();
  QuantizeOptions o;
  o.per_channel = false;
  ASSERT_TRUE(Quantize(m, o).ok());
  EXPECT_EQ(AxisOf(*NodeProducing(m, "W1_dequantized")), -1);
  EXPECT_EQ(m.View("W1_scale")->size(), 1);
  EXPECT_TRUE(m.View("W1_scale")->shape().empty());
  EXPECT_TRUE(CheckModel(m).ok());
}

Model ConvReluConv(int64_t opset = 13) {
  return WithOutputRank(ModelBuilder(opset)
      .Input("x", {-1, 2, 5, 5})
      .Weight("Wc1", {4, 2, 3, 3})
      .Weight("bc1", {4})
      .Node("Conv", {"x", "Wc1", "bc1"}, {"c1"})
      .Attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .Node("Relu", {"c1"}, {"r1"})
      .Weight("Wc2", {3, 4, 3, 3})
      .Weight("bc2", {3})
      .Node("Conv", {"r1", "Wc2", "bc2"}, {"y"})
      .Output("y"),
      4);
}

TEST(QuantRewrite, StaticConvReluConv) {
  Model m = ConvReluConv();
  const Model original = ConvReluConv();
  QuantizeOptions o;
  o.mode = QuantMode::kStatic;
  const CalibrationData data = RandomData({2, 5, 5}, 4, 8);
  auto r = Quantize(m, o, &data);
  ASSERT_TRUE(r.ok()) << r.status().message();
  auto check = CheckModel(m);
  ASSERT_TRUE(check.ok()) << check.status().message();
  // One pair per activation read by a Conv (x and the Relu output), none
  // between Conv and Relu; weight and bias DequantizeLinear for each Conv.
  EXPECT_EQ(OpCounts(m)["QuantizeLinear"], 2);
  EXPECT_EQ(OpCounts(m)["DequantizeLinear"], 6);
  EXPECT_EQ(NodeProducing(m, "c1")->op_type(), "Conv");
  const onnx::NodeProto* relu = NodeProducing(m, "r1");
  ASSERT_NE(relu, nullptr);
  EXPECT_EQ(relu->input(0), "c1");
  // uint8 activations; the Relu output's range starts at 0, so its zero point is 0.
  EXPECT_EQ(m.View("r1_zero_point")->dtype(), DType::kUint8);
  EXPECT_EQ(m.View("r1_zero_point")->AsDouble(0), 0.0);
  EXPECT_GT(m.View("x_zero_point")->AsDouble(0), 100.0);  // inputs in [-1, 1): near 128
  // int32 bias, scale = input scale x weight scale per channel, zero point 0.
  auto bq = m.View("bc2_quantized");
  ASSERT_TRUE(bq.ok());
  EXPECT_EQ(bq->dtype(), DType::kInt32);
  const float sx = static_cast<float>(m.View("r1_scale")->AsDouble(0));
  auto sw = m.View("Wc2_scale");
  auto sb = m.View("bc2_scale");
  ASSERT_EQ(sb->size(), 3);
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(static_cast<float>(sb->AsDouble(c)), sx * static_cast<float>(sw->AsDouble(c)));
    const double b = original.View("bc2")->AsDouble(c);
    EXPECT_EQ(bq->AsDouble(c), std::nearbyint(b / sb->AsDouble(c)));
  }
  EXPECT_EQ(AxisOf(*NodeProducing(m, "bc2_dequantized")), 0);
  // Report rows: 2 weights, 2 activations (with SQNR from the data), 2 biases.
  int acts = 0;
  for (const auto& t : r->tensors) {
    if (t.kind == "activation") {
      ++acts;
      EXPECT_TRUE(t.has_sqnr);
      EXPECT_GT(t.sqnr_db, 25.0) << t.name;
    }
  }
  EXPECT_EQ(acts, 2);
  EXPECT_EQ(r->calibration_samples, 32);
  // Equivalence within quantization error on fresh inputs.
  const auto x = RandomValues(3 * 2 * 5 * 5, 77);
  const auto in = runtime::Tensor::FromFloats({3, 2, 5, 5}, x);
  EXPECT_LT(RelativeError(RunOnce(original, in), RunOnce(m, in)), 0.05);
}

TEST(QuantRewrite, StaticInt8SymmetricActivations) {
  Model m = ConvReluConv();
  QuantizeOptions o;
  o.mode = QuantMode::kStatic;
  o.activations = Scheme::kInt8Symmetric;
  o.calibration.method = CalibrationMethod::kEntropy;
  const CalibrationData data = RandomData({2, 5, 5}, 2, 8);
  ASSERT_TRUE(Quantize(m, o, &data).ok());
  EXPECT_EQ(m.View("x_zero_point")->dtype(), DType::kInt8);
  EXPECT_EQ(m.View("x_zero_point")->AsDouble(0), 0.0);
  EXPECT_EQ(m.View("r1_zero_point")->AsDouble(0), 0.0);
  EXPECT_TRUE(CheckModel(m).ok());
}

TEST(QuantRewrite, SharedActivationAndWeightAreQuantizedOnce) {
  Model m = WithOutputRank(ModelBuilder()
                               .Input("x", {-1, 4})
                               .Weight("W", {4, 4})
                               .Node("MatMul", {"x", "W"}, {"a"})
                               .Node("MatMul", {"x", "W"}, {"b"})
                               .Node("Add", {"a", "b"}, {"y"})
                               .Output("y"),
                           2);
  QuantizeOptions o;
  o.mode = QuantMode::kStatic;
  const CalibrationData data = RandomData({4}, 1, 4);
  auto r = Quantize(m, o, &data);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(OpCounts(m)["QuantizeLinear"], 1);
  EXPECT_EQ(OpCounts(m)["DequantizeLinear"], 2);
  EXPECT_TRUE(CheckModel(m).ok());
}

TEST(QuantRewrite, ExcludeAndOpTypes) {
  Model m = Mlp();
  QuantizeOptions o;
  o.exclude = "^W2$";
  auto r = Quantize(m, o);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(m.FindTensor("W2"), nullptr);
  EXPECT_EQ(m.FindTensor("W1"), nullptr);
  ASSERT_EQ(r->skipped.size(), 1u);
  EXPECT_EQ(r->skipped[0].reason, "excluded by --exclude");
  Model g = Mlp();
  o = {};
  o.op_types = {"MatMul"};
  ASSERT_TRUE(Quantize(g, o).ok());
  EXPECT_NE(g.FindTensor("W1"), nullptr);
  EXPECT_EQ(g.FindTensor("W2"), nullptr);
  Model bad = Mlp();
  o = {};
  o.exclude = "(";
  EXPECT_EQ(Quantize(bad, o).status().code(), StatusCode::kInvalidArgument);
  o = {};
  o.op_types = {"Add"};
  EXPECT_EQ(Quantize(bad, o).status().code(), StatusCode::kInvalidArgument);
}

TEST(QuantRewrite, OpsetRaisedWhenSafeRefusedOtherwise) {
  Model m = ConvReluConv(11);
  auto r = Quantize(m, {});
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->opset_before, 11);
  EXPECT_EQ(r->opset_after, 13);
  EXPECT_EQ(m.proto().opset_import(0).version(), 13);
  EXPECT_TRUE(CheckModel(m).ok());

  auto with_softmax = [] {
    return WithOutputRank(ModelBuilder(11)
                              .Input("x", {-1, 8})
                              .Weight("W", {8, 4})
                              .Node("MatMul", {"x", "W"}, {"h"})
                              .Node("Softmax", {"h"}, {"y"})
                              .Output("y"),
                          2);
  };
  Model s = with_softmax();
  auto refused = Quantize(s, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(refused.status().message().find("Softmax"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("--per-tensor"), std::string::npos);
  // Per tensor needs only opset 10.
  Model t = with_softmax();
  QuantizeOptions o;
  o.per_channel = false;
  auto ok = Quantize(t, o);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(t.proto().opset_import(0).version(), 11);
  EXPECT_TRUE(CheckModel(t).ok());
}

TEST(QuantRewrite, AlreadyQuantizedIsRefused) {
  Model m = Mlp();
  ASSERT_TRUE(Quantize(m, {}).ok());
  auto again = Quantize(m, {});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(again.status().message().find("already quantized"), std::string::npos);
}

TEST(QuantRewrite, NothingToQuantizeIsSuccess) {
  Model m = ModelBuilder().Input("x", {-1, 4}).Node("Relu", {"x"}, {"y"}).Output("y").Build();
  auto r = Quantize(m, {});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->tensors.empty());
  EXPECT_EQ(m.proto().graph().node_size(), 1);
}

TEST(QuantCalibration, NpyDataIsChecked) {
  const Model m = Mlp();
  NpyArray x;
  x.dtype = DType::kFloat32;
  x.shape = {10, 8};
  x.data.resize(10 * 8 * 4);
  auto d = NpyCalibrationData(m, x, "x.npy", 0, 4);
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(d->batches, 3);
  EXPECT_EQ(d->samples, 10);
  EXPECT_EQ(d->batch(2)->at(0).shape(), (std::vector<int64_t>{2, 8}));
  EXPECT_EQ(NpyCalibrationData(m, x, "x.npy", 11, 4).status().code(), StatusCode::kInvalidArgument);
  NpyArray wrong = x;
  wrong.shape = {10, 9};
  wrong.data.resize(10 * 9 * 4);
  auto s = NpyCalibrationData(m, wrong, "x.npy", 0, 4);
  EXPECT_EQ(s.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(s.status().message().find("x.npy"), std::string::npos);
  NpyArray ints = x;
  ints.dtype = DType::kInt64;
  ints.data.resize(10 * 8 * 8);
  EXPECT_EQ(NpyCalibrationData(m, ints, "x.npy", 0, 4).status().code(), StatusCode::kCorrupt);
}

TEST(QuantCalibration, StreamsBatchesAndFindsRanges) {
  const Model m = Mlp();
  const CalibrationData data = RandomData({8}, 3, 16);
  auto t = Calibrate(m, {"x", "r"}, data, {});
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_LT(t->at("x").rmin, -0.9f);
  EXPECT_GT(t->at("x").rmax, 0.9f);
  EXPECT_EQ(t->at("r").rmin, 0.0f);  // a Relu output
  EXPECT_EQ(t->at("x").count, 3 * 16 * 8);
  auto missing = Calibrate(m, {"nope"}, data, {});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace modelpress::quant
