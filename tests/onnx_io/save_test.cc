#include <gtest/gtest.h>

#include <fstream>

#include "modelpress/onnx_io.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::ModelBuilder;
using testing::TempDir;

const char* const kSamples[] = {"digits_mlp.onnx", "digits_cnn.onnx", "resnet_mini.onnx", "mobilenet_block.onnx",
                                "transformer_tiny.onnx"};

// Every tensor of `a` has a tensor of the same name in `b` with identical packed bytes.
void ExpectSameTensors(const Model& a, const Model& b) {
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const TensorEntry& e : a.tensors()) {
    auto va = a.View(e);
    auto vb = b.View(e.name);
    ASSERT_TRUE(va.ok() && vb.ok()) << e.name;
    EXPECT_EQ(va->dtype(), vb->dtype()) << e.name;
    EXPECT_EQ(va->shape(), vb->shape()) << e.name;
    std::string pa(va->packed_bytes(), '\0'), pb(vb->packed_bytes(), '\0');
    va->CopyPackedTo(std::as_writable_bytes(std::span(pa)));
    vb->CopyPackedTo(std::as_writable_bytes(std::span(pb)));
    EXPECT_TRUE(pa == pb) << e.name << " differs after the round trip";
  }
}

TEST(Save, SampleModelsRoundTripWithDeterministicBytes) {
  TempDir dir;
  for (const char* name : kSamples) {
    auto original = LoadModel(testing::SampleModelsDir() / name);
    ASSERT_TRUE(original.ok()) << original.status().message();
    ASSERT_TRUE(SaveModel(*original, dir / "a.onnx").ok());
    ASSERT_TRUE(SaveModel(*original, dir / "b.onnx").ok());
    EXPECT_EQ(testing::ReadFile(dir / "a.onnx"), testing::ReadFile(dir / "b.onnx")) << name;
    auto again = LoadModel(dir / "a.onnx");
    ASSERT_TRUE(again.ok()) << again.status().message();
    ExpectSameTensors(*original, *again);
    ASSERT_TRUE(SaveModel(*again, dir / "c.onnx").ok());
    EXPECT_EQ(testing::ReadFile(dir / "a.onnx"), testing::ReadFile(dir / "c.onnx")) << name;
    EXPECT_FALSE(std::filesystem::exists(dir / "a.onnx.data")) << "a small model gets no data file by default";
  }
}

TEST(Save, ExternalDataAboveThreshold) {
  TempDir dir;
  auto m = LoadModel(testing::SampleModelsDir() / "digits_mlp.onnx");
  ASSERT_TRUE(m.ok());
  SaveOptions opt;
  opt.external = ExternalData::kAlways;
  opt.external_threshold = 4096;
  ASSERT_TRUE(SaveModel(*m, dir / "ext.onnx", opt).ok());
  ASSERT_TRUE(std::filesystem::exists(dir / "ext.onnx.data"));
  auto ext = LoadModel(dir / "ext.onnx");
  ASSERT_TRUE(ext.ok()) << ext.status().message();
  EXPECT_TRUE(ext->uses_external_data());
  uint64_t external_bytes = 0;
  for (const TensorEntry& e : ext->tensors()) {
    auto v = ext->View(e);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->storage() == Storage::kExternal, v->packed_bytes() >= 4096) << e.name;
    if (v->storage() == Storage::kExternal) {
      external_bytes += v->packed_bytes();
      for (const auto& kv : e.proto->external_data()) {
        if (kv.key() == "offset") {
          EXPECT_EQ(std::stoull(kv.value()) % 64, 0u) << e.name;
        } else if (kv.key() == "location") {
          EXPECT_EQ(kv.value(), "ext.onnx.data");
        }
      }
    }
  }
  EXPECT_GT(external_bytes, 0u);
  EXPECT_LT(std::filesystem::file_size(dir / "ext.onnx"), external_bytes / 10);
  ExpectSameTensors(*m, *ext);

  // Saving an external-data model keeps external data (kAuto) with identical bytes...
  ASSERT_TRUE(SaveModel(*ext, dir / "ext2.onnx", opt).ok());
  EXPECT_EQ(testing::ReadFile(dir / "ext.onnx.data"), testing::ReadFile(dir / "ext2.onnx.data"));
  // ...and kNever brings everything back inline, equal to a plain save.
  SaveOptions inline_opt;
  inline_opt.external = ExternalData::kNever;
  ASSERT_TRUE(SaveModel(*ext, dir / "inline.onnx", inline_opt).ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "inline.onnx.data"));
  ASSERT_TRUE(SaveModel(*m, dir / "plain.onnx").ok());
  EXPECT_EQ(testing::ReadFile(dir / "inline.onnx"), testing::ReadFile(dir / "plain.onnx"));
}

TEST(Save, TypedStorageRoundTrips) {
  ModelBuilder b;
  onnx::TensorProto t;
  t.set_name("h");
  t.set_data_type(onnx::TensorProto::FLOAT16);
  t.add_dims(300);
  for (int i = 0; i < 300; ++i) t.add_int32_data(FloatToHalf(static_cast<float>(i) * 0.25f));
  b.Initializer(t);
  auto m = Model::FromProto(b.Proto());
  ASSERT_TRUE(m.ok());
  TempDir dir;
  SaveOptions opt;
  opt.external = ExternalData::kAlways;
  opt.external_threshold = 0;
  ASSERT_TRUE(SaveModel(*m, dir / "h.onnx", opt).ok());
  auto back = LoadModel(dir / "h.onnx");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(back->View("h")->storage(), Storage::kExternal);
  ExpectSameTensors(*m, *back);
  // The in-memory model is unchanged by saving.
  EXPECT_EQ(m->proto().graph().initializer(0).int32_data_size(), 300);
  EXPECT_FALSE(m->proto().graph().initializer(0).has_data_location());
}

TEST(Save, FailureLeavesNothingBehind) {
  TempDir dir;
  auto m = LoadModel(testing::SampleModelsDir() / "digits_mlp.onnx");
  ASSERT_TRUE(m.ok());
  auto s = SaveModel(*m, dir / "missing-folder" / "out.onnx");
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  SaveOptions opt;
  opt.data_file = "../escape.data";
  EXPECT_EQ(SaveModel(*m, dir / "out.onnx", opt).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

// Saving never replaces a file the model reads its external data from,
// neither as the model nor as the data file, and leaves it as it was.
TEST(Save, RefusesToReplaceTheModelsOwnDataFile) {
  TempDir dir;
  auto m = LoadModel(testing::SampleModelsDir() / "digits_mlp.onnx");
  ASSERT_TRUE(m.ok());
  SaveOptions ext;
  ext.external = ExternalData::kAlways;
  ASSERT_TRUE(SaveModel(*m, dir / "a.onnx", ext).ok());
  const std::string data = testing::ReadFile(dir / "a.onnx.data");
  auto a = LoadModel(dir / "a.onnx");
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto s = SaveModel(*a, dir / "a.onnx.data");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.message();
  EXPECT_NE(s.message().find("never modifies its input"), std::string::npos) << s.message();
  SaveOptions onto = ext;
  onto.data_file = "a.onnx.data";
  EXPECT_EQ(SaveModel(*a, dir / "b.onnx", onto).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(testing::ReadFile(dir / "a.onnx.data"), data);
  EXPECT_FALSE(std::filesystem::exists(dir / "b.onnx"));
  // Another data file name is fine.
  EXPECT_TRUE(SaveModel(*a, dir / "b.onnx", ext).ok());
}

TEST(Save, NewerOpsetAndUnknownFieldsRoundTrip) {
  ModelBuilder b(21);
  b.Input("x", {2, 4}).Weight("w", {4, 3}).Node("MatMul", {"x", "w"}, {"y"}).Output("y");
  onnx::ModelProto proto = b.Proto();
  proto.set_ir_version(10);
  // A field number libonnx 1.12 does not know (as a newer ONNX would write) survives.
  proto.mutable_graph()->mutable_initializer(0)->mutable_unknown_fields()->AddVarint(99, 7);
  auto m = Model::FromProto(proto);
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto check = CheckModel(*m);
  ASSERT_TRUE(check.ok());
  EXPECT_FALSE(check->ran);
  EXPECT_NE(check->notice.find("IR version 10"), std::string::npos) << check->notice;
  TempDir dir;
  ASSERT_TRUE(SaveModel(*m, dir / "new.onnx").ok());
  auto back = LoadModel(dir / "new.onnx");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->proto().ir_version(), 10);
  EXPECT_EQ(back->proto().opset_import(0).version(), 21);
  EXPECT_EQ(back->proto().graph().initializer(0).unknown_fields().field_count(), 1);
  ExpectSameTensors(*m, *back);
}

TEST(Check, RejectsABrokenGraph) {
  ModelBuilder b;
  b.Input("x", {2, 4}).Node("Relu", {"not_defined"}, {"y"}).Output("y");
  auto m = Model::FromProto(b.Proto());
  ASSERT_TRUE(m.ok());
  auto check = CheckModel(*m);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(check.status().message().find("ONNX checker"), std::string::npos);
}

}  // namespace
}  // namespace modelpress
