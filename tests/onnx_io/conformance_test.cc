// Every model and tensor file of ONNX's backend test corpus survives a load
// and save with every tensor bit-identical.
#include <gtest/gtest.h>

#include <fstream>

#include "modelpress/onnx_io.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

std::string Packed(const TensorView& v) {
  std::string s(v.packed_bytes(), '\0');
  v.CopyPackedTo(std::as_writable_bytes(std::span(s)));
  return s;
}

TEST(Conformance, ModelsRoundTripBitIdentical) {
  const auto root = testing::ConformanceDir();
  if (root.empty()) GTEST_SKIP() << "../shared/onnx-conformance not present";
  testing::TempDir dir;
  int models = 0, tensors = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(root)) {
    if (f.path().filename() != "model.onnx") continue;
    SCOPED_TRACE(f.path().string());
    auto m = LoadModel(f.path());
    ASSERT_TRUE(m.ok()) << m.status().message();
    ASSERT_TRUE(SaveModel(*m, dir / "a.onnx").ok());
    auto back = LoadModel(dir / "a.onnx");
    ASSERT_TRUE(back.ok()) << back.status().message();
    ASSERT_EQ(m->tensors().size(), back->tensors().size());
    for (const auto& e : m->tensors()) {
      auto va = m->View(e);
      auto vb = back->View(e.name);
      if (!va.ok()) continue;  // e.g. string tensors: kept as they are, compared below
      ASSERT_TRUE(vb.ok());
      EXPECT_EQ(Packed(*va), Packed(*vb)) << e.name;
      ++tensors;
    }
    EXPECT_EQ(m->proto().graph().SerializeAsString(), back->proto().graph().SerializeAsString());
    ASSERT_TRUE(SaveModel(*back, dir / "b.onnx").ok());
    EXPECT_EQ(testing::ReadFile(dir / "a.onnx"), testing::ReadFile(dir / "b.onnx"));
    ++models;
  }
  EXPECT_GT(models, 0);
  std::cout << "[ conformance ] " << models << " models, " << tensors << " tensors round-tripped\n";
}

// The corpus's input/output .pb files are bare TensorProtos in every storage
// ONNX writers use; wrapped as initializers they must view and round-trip.
TEST(Conformance, TensorFilesRoundTripAsInitializers) {
  const auto root = testing::ConformanceDir();
  if (root.empty()) GTEST_SKIP() << "../shared/onnx-conformance not present";
  testing::TempDir dir;
  int viewed = 0, skipped = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(root)) {
    if (f.path().extension() != ".pb") continue;
    SCOPED_TRACE(f.path().string());
    onnx::TensorProto t;
    std::ifstream in(f.path(), std::ios::binary);
    if (!t.ParseFromIstream(&in) || !t.has_data_type()) {
      ++skipped;  // sequence, map or optional values
      continue;
    }
    t.set_name("t");
    testing::ModelBuilder b;
    b.Initializer(t);
    auto m = Model::FromProto(b.Proto());
    ASSERT_TRUE(m.ok()) << m.status().message();
    auto v = m->View("t");
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), StatusCode::kUnsupported) << v.status().message();
      ++skipped;
      continue;
    }
    SaveOptions opt;
    opt.external = ExternalData::kAlways;
    opt.external_threshold = 0;
    ASSERT_TRUE(SaveModel(*m, dir / "t.onnx", opt).ok());
    auto back = LoadModel(dir / "t.onnx");
    ASSERT_TRUE(back.ok()) << back.status().message();
    EXPECT_EQ(Packed(*v), Packed(*back->View("t")));
    ++viewed;
  }
  EXPECT_GT(viewed, 0);
  std::cout << "[ conformance ] " << viewed << " tensor files viewed and round-tripped through external data, "
            << skipped << " not tensors or not viewable\n";
}

}  // namespace
}  // namespace modelpress
