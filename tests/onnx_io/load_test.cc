#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "modelpress/onnx_io.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::ModelBuilder;

onnx::TensorProto Typed(const std::string& name, int32_t dtype, std::vector<int64_t> dims) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(dtype);
  for (int64_t d : dims) t.add_dims(d);
  return t;
}

Result<Model> WithInitializer(onnx::TensorProto t) {
  ModelBuilder b;
  b.Initializer(std::move(t));
  return Model::FromProto(b.Proto());
}

TEST(Load, Float32InFloatData) {
  auto t = Typed("w", onnx::TensorProto::FLOAT, {2, 2});
  for (float v : {1.5f, -2.0f, 0.0f, 3.25f}) t.add_float_data(v);
  auto m = WithInitializer(t);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto v = m->View("w");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->storage(), Storage::kTyped);
  EXPECT_TRUE(v->contiguous());
  ASSERT_EQ(v->span<float>().size(), 4u);
  EXPECT_EQ(v->span<float>()[3], 3.25f);
  EXPECT_TRUE(v->IsZero(2));
}

TEST(Load, NarrowTypesInInt32Data) {
  auto h = Typed("h", onnx::TensorProto::FLOAT16, {3});
  for (float f : {1.0f, -0.5f, 65504.0f}) h.add_int32_data(FloatToHalf(f));
  auto bf = Typed("bf", onnx::TensorProto::BFLOAT16, {2});
  for (float f : {2.0f, -3.0f}) bf.add_int32_data(FloatToBfloat16(f));
  auto i8 = Typed("i8", onnx::TensorProto::INT8, {3});
  for (int v : {-128, 0, 127}) i8.add_int32_data(v);
  auto u8 = Typed("u8", onnx::TensorProto::UINT8, {2});
  for (int v : {0, 255}) u8.add_int32_data(v);
  auto b = Typed("b", onnx::TensorProto::BOOL, {2});
  for (int v : {1, 0}) b.add_int32_data(v);
  auto i64 = Typed("i64", onnx::TensorProto::INT64, {2});
  for (int64_t v : {int64_t{-5}, int64_t{1} << 40}) i64.add_int64_data(v);
  auto f64 = Typed("f64", onnx::TensorProto::DOUBLE, {1});
  f64.add_double_data(0.1);
  auto u32 = Typed("u32", onnx::TensorProto::UINT32, {1});
  u32.add_uint64_data(4000000000u);

  ModelBuilder builder;
  for (auto* t : {&h, &bf, &i8, &u8, &b, &i64, &f64, &u32}) builder.Initializer(*t);
  auto m = Model::FromProto(builder.Proto());
  ASSERT_TRUE(m.ok()) << m.status().message();

  auto check = [&](const char* name, std::vector<double> expected) {
    auto v = m->View(name);
    ASSERT_TRUE(v.ok()) << name;
    ASSERT_EQ(v->size(), static_cast<int64_t>(expected.size())) << name;
    for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(v->AsDouble(i), expected[i]) << name << "[" << i << "]";
  };
  check("h", {1.0, -0.5, 65504.0});
  check("bf", {2.0, -3.0});
  check("i8", {-128, 0, 127});
  check("u8", {0, 255});
  check("b", {1, 0});
  check("i64", {-5, static_cast<double>(int64_t{1} << 40)});
  check("f64", {0.1});
  check("u32", {4000000000.0});
  EXPECT_EQ(m->View("h")->stride(), 4u);
  EXPECT_FALSE(m->View("h")->contiguous());
}

TEST(Load, RawDataForEveryFixedSizeType) {
  for (int32_t dt : {1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 16}) {
    auto t = Typed("t", dt, {3});
    t.set_raw_data(std::string(3 * DTypeSize(dt), '\x01'));
    auto m = WithInitializer(t);
    ASSERT_TRUE(m.ok()) << DTypeName(dt) << ": " << m.status().message();
    auto v = m->View("t");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->storage(), Storage::kRaw);
    EXPECT_EQ(v->packed_bytes(), 3 * DTypeSize(dt));
    EXPECT_FALSE(v->IsZero(0)) << DTypeName(dt);
  }
}

TEST(Load, SizeMismatchNamesTheTensor) {
  auto t = Typed("layer1.weight", onnx::TensorProto::FLOAT, {4, 4});
  t.set_raw_data(std::string(60, '\0'));
  auto m = WithInitializer(t);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(m.status().message().find("layer1.weight"), std::string::npos) << m.status().message();

  auto typed = Typed("fc.bias", onnx::TensorProto::FLOAT, {3});
  typed.add_float_data(1.0f);
  auto m2 = WithInitializer(typed);
  ASSERT_FALSE(m2.ok());
  EXPECT_NE(m2.status().message().find("fc.bias"), std::string::npos);
}

TEST(Load, RawAndTypedDataTogetherIsCorrupt) {
  auto t = Typed("w", onnx::TensorProto::FLOAT, {1});
  t.add_float_data(1.0f);
  t.set_raw_data(std::string(4, '\0'));
  EXPECT_EQ(WithInitializer(t).status().code(), StatusCode::kCorrupt);
}

TEST(Load, DataInTheWrongFieldIsCorrupt) {
  auto t = Typed("w", onnx::TensorProto::FLOAT, {2});
  t.add_int64_data(1);
  t.add_int64_data(2);
  EXPECT_EQ(WithInitializer(t).status().code(), StatusCode::kCorrupt);
}

TEST(Load, HugeDeclaredShapeIsRefused) {
  auto t = Typed("w", onnx::TensorProto::FLOAT, {1ll << 40, 1ll << 40});
  t.set_raw_data(std::string(16, '\0'));
  auto m = WithInitializer(t);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorrupt);
}

TEST(Load, ConstantNodeTensorsAreIndexed) {
  ModelBuilder b;
  b.Input("x", {2, 3})
      .Node("Constant", {}, {"w"})
      .Attr("value", testing::FloatTensor("", {3, 4}, testing::RandomValues(12, 7)))
      .Node("MatMul", {"x", "w"}, {"y"})
      .Output("y");
  auto m = Model::FromProto(b.Proto());
  ASSERT_TRUE(m.ok()) << m.status().message();
  const TensorEntry* e = m->FindTensor("w");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->source, TensorSource::kConstantNode);
  EXPECT_EQ(e->node_index, 0);
  EXPECT_EQ(m->View("w")->size(), 12);
}

TEST(Load, MutableTensorMovesTypedDataToRaw) {
  auto t = Typed("w", onnx::TensorProto::FLOAT16, {2});
  t.add_int32_data(FloatToHalf(1.0f));
  t.add_int32_data(FloatToHalf(2.0f));
  auto m = WithInitializer(t);
  ASSERT_TRUE(m.ok());
  auto w = m->MutableTensor("w");
  ASSERT_TRUE(w.ok());
  auto halves = w->span<uint16_t>();
  ASSERT_EQ(halves.size(), 2u);
  EXPECT_EQ(HalfToFloat(halves[1]), 2.0f);
  halves[0] = 0;
  auto v = m->View("w");
  EXPECT_EQ(v->storage(), Storage::kRaw);
  EXPECT_TRUE(v->IsZero(0));
  EXPECT_EQ(v->AsDouble(1), 2.0);
  EXPECT_EQ(m->proto().graph().initializer(0).int32_data_size(), 0);
}

TEST(LoadFile, MissingFile) {
  auto m = LoadModel("/nonexistent/dir/model.onnx");
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find("/nonexistent/dir/model.onnx"), std::string::npos);
}

TEST(LoadFile, RandomBytesAreNotAModel) {
  testing::TempDir dir;
  std::string junk(4096, '\0');
  uint32_t s = 99;
  for (char& c : junk) {
    s = s * 1664525u + 1013904223u;
    c = static_cast<char>(s >> 24);
  }
  testing::WriteFile(dir / "junk.onnx", junk);
  auto m = LoadModel(dir / "junk.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(m.status().message().find("junk.onnx"), std::string::npos);
}

TEST(LoadFile, TruncatedModelsAreRefused) {
  const std::string full = testing::ReadFile(testing::SampleModelsDir() / "digits_mlp.onnx");
  ASSERT_GT(full.size(), 1000u);
  testing::TempDir dir;
  for (size_t cut : {size_t{10}, full.size() / 3, full.size() / 2, full.size() - 7}) {
    testing::WriteFile(dir / "cut.onnx", full.substr(0, cut));
    auto m = LoadModel(dir / "cut.onnx");
    EXPECT_FALSE(m.ok()) << "cut at " << cut;
    EXPECT_EQ(m.status().code(), StatusCode::kCorrupt) << m.status().message();
  }
}

TEST(LoadFile, EmptyFileAndDirectory) {
  testing::TempDir dir;
  testing::WriteFile(dir / "empty.onnx", "");
  EXPECT_EQ(LoadModel(dir / "empty.onnx").status().code(), StatusCode::kCorrupt);
  EXPECT_FALSE(LoadModel(dir.path()).ok());
}

TEST(LoadFile, SampleModelsLoadWithAllTensorsViewable) {
  for (const char* name : {"digits_mlp.onnx", "digits_cnn.onnx", "resnet_mini.onnx", "mobilenet_block.onnx",
                           "transformer_tiny.onnx"}) {
    auto m = LoadModel(testing::SampleModelsDir() / name);
    ASSERT_TRUE(m.ok()) << m.status().message();
    EXPECT_GT(m->tensors().size(), 0u);
    for (const auto& e : m->tensors()) EXPECT_TRUE(m->View(e).ok()) << name << " " << e.name;
    auto check = CheckModel(*m);
    ASSERT_TRUE(check.ok()) << check.status().message();
    EXPECT_TRUE(check->ran);
  }
}

}  // namespace
}  // namespace modelpress
