#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "modelpress/prune.h"
#include "modelpress/sparsity.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::ModelBuilder;

// x -> Gemm(W1 [32,16], transB) -> Relu -> MatMul(W2 [32,8]) -> Add(b) -> Conv? no: a small MLP with a bias.
Model Mlp() {
  ModelBuilder b;
  b.Input("x", {-1, 16})
      .Weight("W1", {32, 16})
      .Weight("B1", {32})
      .Node("Gemm", {"x", "W1", "B1"}, {"h"})
      .Attr("transB", int64_t{1})
      .Node("Relu", {"h"}, {"r"})
      .Weight("W2", {32, 8})
      .Node("MatMul", {"r", "W2"}, {"m"})
      .Weight("B2", {8})
      .Node("Add", {"m", "B2"}, {"y"})
      .Output("y");
  return b.Build();
}

int64_t Zeros(const Model& m, const std::string& name) { return CountZeros(*m.View(name)); }

TEST(PruneUnstructured, LayerScopeHitsEveryTensorExactly) {
  Model m = Mlp();
  UnstructuredOptions o;
  o.sparsity = 0.7;
  auto r = PruneUnstructured(m, o);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(Zeros(m, "W1"), 358);  // floor(0.7 * 512)
  EXPECT_EQ(Zeros(m, "W2"), 179);  // floor(0.7 * 256)
  EXPECT_EQ(Zeros(m, "B1"), 0);    // biases are not eligible by default
  EXPECT_EQ(Zeros(m, "B2"), 0);
  EXPECT_EQ(r->zeros_after, 358 + 179);
  EXPECT_EQ(r->parameters, 768);
}

TEST(PruneUnstructured, GlobalScopeUsesOneThreshold) {
  Model m = Mlp();
  // Scale W2 up so the global threshold falls mostly on W1.
  auto w2 = m.MutableTensor("W2");
  for (float& v : w2->span<float>()) v *= 100.0f;
  UnstructuredOptions o;
  o.sparsity = 0.5;
  o.scope = PruneScope::kGlobal;
  auto r = PruneUnstructured(m, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Zeros(m, "W1") + Zeros(m, "W2"), 384);
  EXPECT_GT(Zeros(m, "W1"), 370);
  // Every pruned weight is no larger than every kept one.
  float max_pruned = 0, min_kept = 1e30f;
  auto orig = Mlp();
  auto o2 = orig.MutableTensor("W2");
  for (float& v : o2->span<float>()) v *= 100.0f;
  for (const char* name : {"W1", "W2"}) {
    auto before = orig.View(name)->span<float>();
    auto after = m.View(name)->span<float>();
    for (size_t i = 0; i < before.size(); ++i) {
      if (after[i] == 0.0f) {
        max_pruned = std::max(max_pruned, std::fabs(before[i]));
      } else {
        min_kept = std::min(min_kept, std::fabs(before[i]));
        EXPECT_EQ(after[i], before[i]);
      }
    }
  }
  EXPECT_LE(max_pruned, min_kept);
}

TEST(PruneUnstructured, SparsityZeroChangesNothing) {
  Model m = Mlp();
  const std::string before = m.proto().SerializeAsString();
  UnstructuredOptions o;
  o.sparsity = 0.0;
  ASSERT_TRUE(PruneUnstructured(m, o).ok());
  EXPECT_EQ(m.proto().SerializeAsString(), before);
}

TEST(PruneUnstructured, FiltersAndOverrides) {
  {
    Model m = Mlp();
    UnstructuredOptions o;
    o.sparsity = 0.5;
    o.filter.exclude = "^W2$";
    auto r = PruneUnstructured(m, o);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(Zeros(m, "W2"), 0);
    EXPECT_EQ(Zeros(m, "W1"), 256);
    bool listed = false;
    for (const auto& t : r->tensors) listed |= t.name == "W2" && !t.pruned && t.reason == "excluded by --exclude";
    EXPECT_TRUE(listed);
  }
  {
    Model m = Mlp();
    UnstructuredOptions o;
    o.sparsity = 0.5;
    o.filter.min_params = 300;
    ASSERT_TRUE(PruneUnstructured(m, o).ok());
    EXPECT_EQ(Zeros(m, "W2"), 0);
  }
  {
    Model m = Mlp();
    UnstructuredOptions o;
    o.sparsity = 0.5;
    o.filter.keep_first_last = true;
    auto r = PruneUnstructured(m, o);
    EXPECT_EQ(r.status().code(), StatusCode::kUnsupported) << "both layers are first or last: nothing left";
  }
  {
    Model m = Mlp();
    UnstructuredOptions o;
    o.sparsity = 0.5;
    o.layer_sparsity = {{"W2", 0.25}};
    o.scope = PruneScope::kGlobal;
    ASSERT_TRUE(PruneUnstructured(m, o).ok());
    EXPECT_EQ(Zeros(m, "W2"), 64);
    EXPECT_EQ(Zeros(m, "W1"), 256);
  }
  {
    Model m = Mlp();
    UnstructuredOptions o;
    o.sparsity = 0.5;
    o.filter.roles = {WeightRole::kBias};
    ASSERT_TRUE(PruneUnstructured(m, o).ok());
    EXPECT_EQ(Zeros(m, "B1"), 16);
    EXPECT_EQ(Zeros(m, "W1"), 0);
  }
}

TEST(PruneUnstructured, BadOptionsLeaveTheModelUnchanged) {
  Model m = Mlp();
  const std::string before = m.proto().SerializeAsString();
  UnstructuredOptions o;
  o.sparsity = 1.0;
  EXPECT_EQ(PruneUnstructured(m, o).status().code(), StatusCode::kInvalidArgument);
  o.sparsity = 0.5;
  o.filter.include = "nothing-matches";
  EXPECT_EQ(PruneUnstructured(m, o).status().code(), StatusCode::kInvalidArgument);
  o.filter.include = "([";
  EXPECT_EQ(PruneUnstructured(m, o).status().code(), StatusCode::kInvalidArgument);
  o.filter.include = "";
  o.layer_sparsity = {{"nope", 0.5}};
  EXPECT_EQ(PruneUnstructured(m, o).status().code(), StatusCode::kInvalidArgument);
  o.layer_sparsity = {{"W1", 2.0}};
  EXPECT_EQ(PruneUnstructured(m, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(m.proto().SerializeAsString(), before);
}

TEST(PruneUnstructured, NoEligibleTensor) {
  ModelBuilder b;
  b.Input("x", {2, 4}).Weight("s", {4}).Node("Mul", {"x", "s"}, {"y"}).Output("y");
  Model m = b.Build();
  EXPECT_EQ(PruneUnstructured(m, {}).status().code(), StatusCode::kUnsupported);
}

TEST(PruneUnstructured, Float16WeightsInTypedStorage) {
  ModelBuilder b;
  onnx::TensorProto t;
  t.set_name("W");
  t.set_data_type(onnx::TensorProto::FLOAT16);
  t.add_dims(8);
  t.add_dims(4);
  const auto vals = testing::RandomValues(32, 9);
  for (float v : vals) t.add_int32_data(FloatToHalf(v));
  b.Input("x", {2, 8}, onnx::TensorProto::FLOAT16).Initializer(t).Node("MatMul", {"x", "W"}, {"y"}).Output("y");
  Model m = b.Build();
  UnstructuredOptions o;
  o.sparsity = 0.75;
  ASSERT_TRUE(PruneUnstructured(m, o).ok());
  auto v = m.View("W");
  EXPECT_EQ(CountZeros(*v), 24);
  EXPECT_EQ(v->dtype(), DType::kFloat16);
}

TEST(PruneUnstructured, ExternalDataInExternalDataOut) {
  testing::TempDir dir;
  auto src = LoadModel(testing::SampleModelsDir() / "digits_mlp.onnx");
  ASSERT_TRUE(src.ok());
  SaveOptions ext;
  ext.external = ExternalData::kAlways;
  ASSERT_TRUE(SaveModel(*src, dir / "ext.onnx", ext).ok());
  const std::string data_before = testing::ReadFile(dir / "ext.onnx.data");
  auto m = LoadModel(dir / "ext.onnx");
  ASSERT_TRUE(m.ok());
  UnstructuredOptions o;
  o.sparsity = 0.9;
  o.scope = PruneScope::kGlobal;
  ASSERT_TRUE(PruneUnstructured(*m, o).ok());
  ASSERT_TRUE(SaveModel(*m, dir / "pruned.onnx").ok());
  EXPECT_EQ(testing::ReadFile(dir / "ext.onnx.data"), data_before) << "the input's data file is never written";
  auto back = LoadModel(dir / "pruned.onnx");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->uses_external_data());
  int64_t zeros = 0;
  for (const char* n : {"fc1.weight", "fc2.weight", "fc3.weight"}) zeros += CountZeros(*back->View(n));
  EXPECT_EQ(zeros, 45180);  // floor(0.9 * 50200)
}

TEST(PruneUnstructured, OnSaveWritesTheSameFilesWithoutTouchingTheMapping) {
  // Two large external weights on a 1/64 grid (ties at the threshold) and a
  // small inline one: PruneUnstructuredOnSave + SaveModel must write the
  // files PruneUnstructured + SaveModel write, with the same report, while
  // the external tensors of its model keep their values in memory.
  testing::TempDir dir;
  auto grid = [](size_t n, uint32_t seed) {
    std::vector<float> v = testing::RandomValues(n, seed);
    for (float& x : v) x = std::round(x * 64.0f) / 64.0f;
    return v;
  };
  ModelBuilder b;
  b.Input("x", {-1, 1024})
      .Weight("W1", {1024, 700}, grid(1024 * 700, 1))
      .Node("MatMul", {"x", "W1"}, {"h"})
      .Weight("W2", {700, 600}, grid(700 * 600, 2))
      .Node("MatMul", {"h", "W2"}, {"g"})
      .Weight("W3", {600, 10}, grid(600 * 10, 3))
      .Node("MatMul", {"g", "W3"}, {"y"})
      .Output("y");
  SaveOptions ext;
  ext.external = ExternalData::kAlways;
  ext.external_threshold = 100000;  // W3 stays inline
  ASSERT_TRUE(SaveModel(b.Build(), dir / "in.onnx", ext).ok());
  for (PruneScope scope : {PruneScope::kGlobal, PruneScope::kLayer}) {
    UnstructuredOptions o;
    o.sparsity = 0.9;
    o.scope = scope;
    auto in_place = LoadModel(dir / "in.onnx");
    auto deferred = LoadModel(dir / "in.onnx");
    ASSERT_TRUE(in_place.ok() && deferred.ok());
    const std::string w1_before(reinterpret_cast<const char*>(deferred->View("W1")->bytes().data()), 1024 * 700 * 4);
    auto r1 = PruneUnstructured(*in_place, o);
    SaveOptions save = ext;
    auto r2 = PruneUnstructuredOnSave(*deferred, o, &save);
    ASSERT_TRUE(r1.ok() && r2.ok());
    EXPECT_EQ(save.edits.size(), 2u) << "W1 and W2 are zeroed on the way out";
    EXPECT_EQ(PruneReportJson(*r1), PruneReportJson(*r2));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(deferred->View("W1")->bytes().data()), 1024 * 700 * 4), w1_before);
    std::filesystem::create_directories(dir / "a");
    std::filesystem::create_directories(dir / "b");
    ASSERT_TRUE(SaveModel(*in_place, dir / "a" / "out.onnx", ext).ok());
    ASSERT_TRUE(SaveModel(*deferred, dir / "b" / "out.onnx", save).ok());
    EXPECT_TRUE(testing::ReadFile(dir / "a" / "out.onnx") == testing::ReadFile(dir / "b" / "out.onnx"));
    EXPECT_TRUE(testing::ReadFile(dir / "a" / "out.onnx.data") == testing::ReadFile(dir / "b" / "out.onnx.data"));
    // The same edits also apply when the tensors are written inline.
    SaveOptions inline_save = save;
    inline_save.external = ExternalData::kNever;
    ASSERT_TRUE(SaveModel(*deferred, dir / "c.onnx", inline_save).ok());
    auto c = LoadModel(dir / "c.onnx");
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(CountZeros(*c->View("W1")) + CountZeros(*c->View("W2")) + CountZeros(*c->View("W3")), r2->zeros_after);
  }
}

TEST(SaveModel, EditsMustNameATensor) {
  testing::TempDir dir;
  Model m = Mlp();
  SaveOptions save;
  save.edits["nope"] = [](uint64_t, std::span<const std::byte> in, std::span<std::byte> out) { std::copy(in.begin(), in.end(), out.begin()); };
  const Status s = SaveModel(m, dir / "out.onnx", save);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("nope"), std::string::npos) << s.message();
  EXPECT_FALSE(std::filesystem::exists(dir / "out.onnx"));
}

TEST(PruneUnstructured, SameResultOnAnyThreadCount) {
  auto a = LoadModel(testing::SampleModelsDir() / "transformer_tiny.onnx");
  auto b = LoadModel(testing::SampleModelsDir() / "transformer_tiny.onnx");
  ASSERT_TRUE(a.ok() && b.ok());
  UnstructuredOptions o;
  o.sparsity = 0.8;
  o.scope = PruneScope::kGlobal;
  o.threads = 1;
  ASSERT_TRUE(PruneUnstructured(*a, o).ok());
  o.threads = 7;
  ASSERT_TRUE(PruneUnstructured(*b, o).ok());
  EXPECT_EQ(a->proto().SerializeAsString(), b->proto().SerializeAsString());
}

TEST(PruneReport, JsonAgreesWithTheReport) {
  Model m = Mlp();
  UnstructuredOptions o;
  o.sparsity = 0.5;
  o.filter.exclude = "W2";
  auto r = PruneUnstructured(m, o);
  ASSERT_TRUE(r.ok());
  const auto j = nlohmann::json::parse(PruneReportJson(*r));
  EXPECT_EQ(j["method"], "unstructured-layer");
  ASSERT_EQ(j["tensors"].size(), 2u);
  EXPECT_EQ(j["tensors"][0]["name"], "W1");
  EXPECT_EQ(j["tensors"][0]["zeros_after"], 256);
  EXPECT_DOUBLE_EQ(j["tensors"][0]["sparsity_after"].get<double>(), 0.5);
  EXPECT_EQ(j["tensors"][1]["pruned"], false);
  EXPECT_EQ(j["totals"]["zeros_after"], 256);
}

}  // namespace
}  // namespace modelpress
