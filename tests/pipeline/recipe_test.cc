// Recipe parsing: options reach the stage structs, and every error names the
// recipe and the line of the offending key or value.
#include <gtest/gtest.h>

#include "modelpress/pipeline.h"
#include "support/test_paths.h"

namespace modelpress::pipeline {
namespace {

Status ParseError(const std::string& text) {
  auto r = ParseRecipe(text, "r.yaml");
  EXPECT_FALSE(r.ok()) << "accepted:\n" << text;
  return r.ok() ? Status::Ok() : r.status();
}

void ExpectError(const std::string& text, const std::string& where, const std::string& what) {
  const Status s = ParseError(text);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind(where, 0), 0u) << s.message();
  EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
}

TEST(Recipe, OptionsReachTheStagesInOrder) {
  auto r = ParseRecipe(R"(name: t
description: every stage
calibration:
  data: calib/x.npy
stages:
  - prune_channels:
      ratio: 0.25
      criterion: l2
      round_to: 8
  - prune:
      method: unstructured
      scope: global
      sparsity: 0.85
      exclude: "^head"
      roles: [gemm, matmul]
      layers: {fc1.weight: 0.5}
  - prune:
      method: nm
      n: 1
      m: 4
  - quantize:
      mode: static
      activations: int8
      calibrate: percentile
      percentile: 99.9
      samples: 256
      per_channel: false
  - pack:
      level: 7
)",
                       "t.yaml", "/base");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->name, "t");
  EXPECT_EQ(r->calib_data, std::filesystem::path("/base/calib/x.npy"));
  ASSERT_EQ(r->stages.size(), 5u);
  const auto& c = std::get<PruneChannelsStage>(r->stages[0]);
  EXPECT_DOUBLE_EQ(c.options.ratio, 0.25);
  EXPECT_EQ(c.options.criterion, ChannelCriterion::kL2);
  EXPECT_EQ(c.options.round_to, 8);
  const auto& u = std::get<PruneStage>(r->stages[1]);
  EXPECT_EQ(u.method, PruneStage::Method::kUnstructured);
  EXPECT_EQ(u.unstructured.scope, PruneScope::kGlobal);
  EXPECT_DOUBLE_EQ(u.unstructured.sparsity, 0.85);
  EXPECT_EQ(u.unstructured.filter.exclude, "^head");
  EXPECT_EQ(u.unstructured.filter.roles, (std::vector<WeightRole>{WeightRole::kGemmWeight, WeightRole::kMatMulWeight}));
  ASSERT_EQ(u.unstructured.layer_sparsity.size(), 1u);
  EXPECT_EQ(u.unstructured.layer_sparsity[0].first, "fc1.weight");
  const auto& nm = std::get<PruneStage>(r->stages[2]);
  EXPECT_EQ(nm.method, PruneStage::Method::kNM);
  EXPECT_EQ(nm.nm.n, 1);
  EXPECT_EQ(nm.nm.m, 4);
  const auto& q = std::get<QuantizeStage>(r->stages[3]);
  EXPECT_EQ(q.options.mode, quant::QuantMode::kStatic);
  EXPECT_EQ(q.options.activations, quant::Scheme::kInt8Symmetric);
  EXPECT_EQ(q.options.calibration.method, quant::CalibrationMethod::kPercentile);
  EXPECT_DOUBLE_EQ(q.options.calibration.percentile, 99.9);
  EXPECT_EQ(q.samples, 256);
  EXPECT_FALSE(q.options.per_channel);
  EXPECT_EQ(std::get<PackStage>(r->stages[4]).options.level, 7);
  EXPECT_EQ(StageName(r->stages[4]), "pack");
}

TEST(Recipe, BareStageNamesTakeDefaults) {
  auto r = ParseRecipe("stages:\n  - quantize\n  - pack\n", "d.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->stages.size(), 2u);
  EXPECT_EQ(std::get<QuantizeStage>(r->stages[0]).options.mode, quant::QuantMode::kWeightOnly);
  EXPECT_EQ(std::get<PackStage>(r->stages[1]).options.level, 19);
}

TEST(Recipe, ReconstructTakesTrueOrItsSettings) {
  auto r = ParseRecipe(R"(stages:
  - prune_channels:
      ratio: 0.25
      reconstruct: true
  - prune:
      sparsity: 0.9
      scope: global
      reconstruct:
        samples: 128
        damp: 0.05
        refit: exact
        saliency: obs
  - prune:
      method: nm
      reconstruct: false
)",
                       "t.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const auto& c = std::get<PruneChannelsStage>(r->stages[0]);
  EXPECT_TRUE(c.reconstruct.enabled);
  EXPECT_EQ(c.reconstruct.samples, 256);
  const auto& p = std::get<PruneStage>(r->stages[1]);
  EXPECT_TRUE(p.reconstruct.enabled);
  EXPECT_EQ(p.reconstruct.samples, 128);
  EXPECT_DOUBLE_EQ(p.reconstruct.options.refit.damp, 0.05);
  EXPECT_EQ(p.reconstruct.options.refit.method, RefitMethod::kExact);
  EXPECT_EQ(p.reconstruct.options.saliency, MaskSaliency::kObs);
  EXPECT_FALSE(std::get<PruneStage>(r->stages[2]).reconstruct.enabled);
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      reconstruct:\n        saliency: size\n", "r.yaml:5:",
              "'saliency' must be one of");
  ExpectError("stages:\n  - prune_channels:\n      ratio: 0.5\n      reconstruct:\n        saliency: obs\n", "r.yaml:5:",
              "unknown key 'saliency'");
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      reconstruct: maybe\n", "r.yaml:4:", "true or false");
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      reconstruct:\n        samples: 0\n", "r.yaml:5:",
              "'samples' must be in");
}

TEST(Recipe, UnknownKeysNameTheirLine) {
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      sparsty: 0.6\n", "r.yaml:4:", "unknown key 'sparsty'");
  ExpectError("name: x\nstage:\n  - pack\n", "r.yaml:2:", "unknown key 'stage'");
  ExpectError("stages:\n  - pack\ncalibration:\n  date: x.npy\n", "r.yaml:4:", "unknown key 'date'");
  // A key valid for another method is unknown here.
  ExpectError("stages:\n  - prune:\n      method: nm\n      sparsity: 0.5\n", "r.yaml:4:", "unknown key 'sparsity'");
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n  - squash:\n      x: 1\n", "r.yaml:4:", "unknown stage 'squash'");
}

TEST(Recipe, BadValuesNameTheirLine) {
  ExpectError("stages:\n  - prune:\n      sparsity: 1.5\n", "r.yaml:3:", "'sparsity' must be in [0, 1)");
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      scope: planet\n", "r.yaml:4:",
              "'scope' must be one of global, layer");
  ExpectError("stages:\n  - pack:\n      level: 30\n", "r.yaml:3:", "'level' must be in [1, 22]");
  ExpectError("stages:\n  - pack:\n      inline_up_to: 100000\n", "r.yaml:3:", "'inline_up_to' must be in [0, 65536]");
  ExpectError("stages:\n  - prune:\n      method: nm\n      n: 4\n      m: 4\n", "r.yaml:4:", "'n' must be smaller");
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      exclude: \"(\"\n", "r.yaml:4:", "not a valid regular");
  ExpectError("stages:\n  - quantize:\n      activations: int8\n", "r.yaml:3:", "applies to mode static only");
  ExpectError("stages:\n  - prune:\n      sparsity: 0.5\n      roles: [gemm, dense]\n", "r.yaml:4:", "'dense'");
}

TEST(Recipe, WrongTypesNameTheirLine) {
  ExpectError("stages:\n  - prune:\n      sparsity: [0.5]\n", "r.yaml:3:", "'sparsity' must be a number");
  ExpectError("stages:\n  - prune:\n      sparsity: half\n", "r.yaml:3:", "'sparsity' must be a number, got 'half'");
  ExpectError("stages:\n  - quantize:\n      per_channel: maybe\n", "r.yaml:3:", "must be true or false");
  ExpectError("stages:\n  - pack:\n      level: 3.5\n", "r.yaml:3:", "'level' must be an integer");
  ExpectError("stages:\n  - prune: 0.5\n", "r.yaml:2:", "must be a mapping");
  ExpectError("stages: pack\n", "r.yaml:1:", "non-empty list");
  ExpectError("- pack\n", "r.yaml:1:", "a recipe is a mapping");
}

TEST(Recipe, StructureErrors) {
  ExpectError("name: x\n", "r.yaml:1:", "no 'stages'");
  ExpectError("stages: []\n", "r.yaml:1:", "non-empty list");
  ExpectError("stages:\n  - pack\n  - quantize\n", "r.yaml:3:", "'pack' must be the last stage");
  ExpectError("stages:\n  - quantize\n  - prune:\n      sparsity: 0.5\n", "r.yaml:3:", "after 'quantize'");
  ExpectError("stages:\n  - quantize\n  - quantize\n", "r.yaml:3:", "quantized once");
  ExpectError("stages:\n  - prune:\n      scope: layer\n", "r.yaml:3:", "needs 'sparsity'");
  ExpectError("stages:\n  - prune: {sparsity: 0.5, n: 2}\n", "r.yaml:2:", "unknown key 'n'");
  // Not YAML at all.
  ExpectError("stages:\n  - prune:\n    sparsity: [0.5\n", "r.yaml:", "not valid YAML");
}

TEST(Recipe, MissingFileIsNotFound) {
  auto r = LoadRecipe("/nonexistent/recipe.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/recipe.yaml"), std::string::npos);
}

// The recipes shipped as examples parse, and their calibration data exists.
TEST(Recipe, SampleRecipesParse) {
  const auto dir = testing::SampleModelsDir() / "recipes";
  int seen = 0;
  for (const std::string name : {"edge-int8", "tensorrt-2of4", "slim-channels", "max-compression"}) {
    auto r = LoadRecipe(dir / (name + ".yaml"));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->name, name);
    if (!r->calib_data.empty()) {
      EXPECT_TRUE(std::filesystem::exists(r->calib_data)) << r->calib_data;
    }
    ++seen;
  }
  EXPECT_EQ(seen, 4);
}

}  // namespace
}  // namespace modelpress::pipeline
