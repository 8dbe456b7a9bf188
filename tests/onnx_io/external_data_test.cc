#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "modelpress/onnx_io.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::ModelBuilder;
using testing::TempDir;

// A model whose one initializer "w" [rows, 16] lives in external data.
onnx::ModelProto ExternalModel(const std::string& location, int64_t offset, int64_t length, int64_t rows = 4) {
  ModelBuilder b;
  onnx::TensorProto t;
  t.set_name("w");
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(rows);
  t.add_dims(16);
  t.set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    auto* kv = t.add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", location);
  if (offset >= 0) add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
  b.Input("x", {1, rows}).Initializer(t).Node("MatMul", {"x", "w"}, {"y"}).Output("y");
  return b.Proto();
}

void WriteProto(const std::filesystem::path& p, const onnx::ModelProto& m) {
  std::ofstream out(p, std::ios::binary);
  ASSERT_TRUE(m.SerializeToOstream(&out));
}

std::string Floats(size_t n, float start) {
  std::string s(n * 4, '\0');
  for (size_t i = 0; i < n; ++i) {
    const float v = start + static_cast<float>(i);
    std::memcpy(s.data() + 4 * i, &v, 4);
  }
  return s;
}

TEST(ExternalData, LoadsMappedWithOffset) {
  TempDir dir;
  testing::WriteFile(dir / "weights.bin", std::string(128, 'x') + Floats(64, 1.0f));
  WriteProto(dir / "m.onnx", ExternalModel("weights.bin", 128, 256));
  auto m = LoadModel(dir / "m.onnx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_TRUE(m->uses_external_data());
  auto v = m->View("w");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->storage(), Storage::kExternal);
  EXPECT_EQ(v->span<float>()[0], 1.0f);
  EXPECT_EQ(v->span<float>()[63], 64.0f);
}

TEST(ExternalData, LengthMayBeOmitted) {
  TempDir dir;
  testing::WriteFile(dir / "w.bin", Floats(64, 0.0f));
  WriteProto(dir / "m.onnx", ExternalModel("w.bin", -1, -1));
  auto m = LoadModel(dir / "m.onnx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->View("w")->span<float>()[5], 5.0f);
}

TEST(ExternalData, LocationInSubfolderIsAllowed) {
  TempDir dir;
  std::filesystem::create_directory(dir / "data");
  testing::WriteFile(dir / "data" / "w.bin", Floats(64, 0.0f));
  WriteProto(dir / "m.onnx", ExternalModel("data/w.bin", 0, 256));
  EXPECT_TRUE(LoadModel(dir / "m.onnx").ok());
}

TEST(ExternalData, EscapingLocationsAreRefused) {
  TempDir outer;
  std::filesystem::create_directory(outer / "model");
  testing::WriteFile(outer / "secret.bin", Floats(64, 0.0f));
  std::filesystem::create_directory_symlink(outer.path(), outer / "model" / "up");
  std::filesystem::create_symlink(outer / "secret.bin", outer / "model" / "link.bin");
  for (const std::string& loc : std::vector<std::string>{(outer / "secret.bin").string(), std::string("../secret.bin"),
                                std::string("sub/../../secret.bin"), std::string("up/secret.bin"),
                                std::string("link.bin")}) {
    WriteProto(outer / "model" / "m.onnx", ExternalModel(loc, 0, 256));
    auto m = LoadModel(outer / "model" / "m.onnx");
    ASSERT_FALSE(m.ok()) << loc;
    EXPECT_EQ(m.status().code(), StatusCode::kPermissionDenied) << loc << ": " << m.status().message();
    EXPECT_NE(m.status().message().find("'w'"), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find("m.onnx"), std::string::npos) << m.status().message();
  }
}

TEST(ExternalData, MissingFile) {
  TempDir dir;
  WriteProto(dir / "m.onnx", ExternalModel("nothere.bin", 0, 256));
  auto m = LoadModel(dir / "m.onnx");
  EXPECT_EQ(m.status().code(), StatusCode::kNotFound);
  EXPECT_NE(m.status().message().find("nothere.bin"), std::string::npos);
}

TEST(ExternalData, ShortFileOrBadRangeIsCorrupt) {
  TempDir dir;
  testing::WriteFile(dir / "w.bin", Floats(60, 0.0f));
  WriteProto(dir / "m.onnx", ExternalModel("w.bin", 0, 256));
  auto m = LoadModel(dir / "m.onnx");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(m.status().message().find("w.bin"), std::string::npos) << m.status().message();

  testing::WriteFile(dir / "w.bin", Floats(64, 0.0f));
  WriteProto(dir / "m.onnx", ExternalModel("w.bin", 1ll << 62, 256));
  EXPECT_EQ(LoadModel(dir / "m.onnx").status().code(), StatusCode::kCorrupt);

  WriteProto(dir / "m.onnx", ExternalModel("w.bin", 0, 100));
  EXPECT_EQ(LoadModel(dir / "m.onnx").status().code(), StatusCode::kCorrupt);

  // A declared shape far larger than the file is refused before anything is allocated.
  WriteProto(dir / "m.onnx", ExternalModel("w.bin", 0, -1, 1ll << 50));
  EXPECT_EQ(LoadModel(dir / "m.onnx").status().code(), StatusCode::kCorrupt);
}

TEST(ExternalData, MutationStaysInMemory) {
  TempDir dir;
  const std::string bytes = Floats(64, 1.0f);
  testing::WriteFile(dir / "w.bin", bytes);
  WriteProto(dir / "m.onnx", ExternalModel("w.bin", 0, 256));
  auto m = LoadModel(dir / "m.onnx");
  ASSERT_TRUE(m.ok());
  auto w = m->MutableTensor("w");
  ASSERT_TRUE(w.ok());
  w->span<float>()[0] = 0.0f;
  EXPECT_TRUE(m->View("w")->IsZero(0));
  EXPECT_EQ(testing::ReadFile(dir / "w.bin"), bytes);

  ASSERT_TRUE(SaveModel(*m, dir / "out.onnx").ok());
  auto back = LoadModel(dir / "out.onnx");
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_TRUE(back->View("w")->IsZero(0));
  EXPECT_EQ(back->View("w")->span<float>()[1], 2.0f);
}

// Resident anonymous memory of this process, in bytes.
int64_t RssAnon() {
  std::ifstream in("/proc/self/status");
  std::string key;
  while (in >> key) {
    if (key == "RssAnon:") {
      int64_t kb = 0;
      in >> kb;
      return kb * 1024;
    }
    in.ignore(1 << 20, '\n');
  }
  return -1;
}

TEST(ExternalData, LargeTensorIsMappedNotCopied) {
  TempDir dir;
  constexpr int64_t kRows = 1 << 15;  // 32768 x 1024 float32 = 128 MiB
  {
    std::ofstream out(dir / "big.bin", std::ios::binary);
    const std::string row = Floats(1024, 0.5f);
    for (int64_t r = 0; r < kRows; ++r) out.write(row.data(), static_cast<std::streamsize>(row.size()));
  }
  onnx::ModelProto proto = ExternalModel("big.bin", 0, kRows * 1024 * 4, kRows);
  proto.mutable_graph()->mutable_initializer(0)->set_dims(1, 1024);
  WriteProto(dir / "big.onnx", proto);
  const int64_t before = RssAnon();
  ASSERT_GE(before, 0);
  auto m = LoadModel(dir / "big.onnx");
  ASSERT_TRUE(m.ok()) << m.status().message();
  auto v = m->View("w");
  ASSERT_TRUE(v.ok());
  double sum = 0;
  for (int64_t i = 0; i < v->size(); i += 1024) sum += v->span<float>()[i];  // touch every page
  EXPECT_EQ(sum, 0.5 * kRows);
  const int64_t grown = RssAnon() - before;
  EXPECT_LT(grown, 16 << 20) << "anonymous memory grew by " << grown << " bytes for a 128 MiB external tensor";
}

}  // namespace
}  // namespace modelpress
