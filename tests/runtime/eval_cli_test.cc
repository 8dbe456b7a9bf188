// `modelpress eval` end to end: accuracy, fixed batch dims, --compare, and a
// clear one-line error with the documented exit code for every bad input.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "modelpress/npy.h"
#include "support/model_builder.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::Sample;
using testing::ShellQuote;

testing::CommandResult Eval(const std::string& args) { return testing::Modelpress("eval " + args); }

// A linear classifier x[?, 64] -> [?, 10] with the given batch dim (-1 = free).
void WriteLinear(const std::filesystem::path& p, int64_t batch, float sign) {
  auto w = testing::RandomValues(64 * 10, 42);
  for (float& v : w) v *= sign;
  testing::ModelBuilder mb;
  mb.Input("x", {batch, 64}).Weight("w", {64, 10}, w);
  mb.Node("MatMul", {"x", "w"}, {"y"});
  mb.Output("y");
  testing::WriteFile(p, mb.Proto().SerializeAsString());
}

TEST(EvalCli, DigitsAccuracyAndSelfComparison) {
  auto r = Eval(Sample("digits_cnn.onnx") + " --input " + Sample("digits_test_img.npy") + " --labels " +
                Sample("digits_test_y.npy") + " --compare " + Sample("digits_cnn.onnx") + " --json --batch 50");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 360);
  EXPECT_EQ(j["batch"], 50);
  // sample_models/README.md records 352/360 measured with torch.
  EXPECT_EQ(j["correct"], 352);
  EXPECT_EQ(j["compare"]["max_abs_diff"], 0.0);
  EXPECT_EQ(j["compare"]["top1_agreement"], 1.0);
  EXPECT_NEAR(j["compare"]["mean_cosine"].get<double>(), 1.0, 1e-12);
}

TEST(EvalCli, FixedBatchOfOneLoopsAndAgreesWithFreeBatch) {
  testing::TempDir dir;
  WriteLinear(dir / "one.onnx", 1, 1.0f);
  WriteLinear(dir / "free.onnx", -1, 1.0f);
  WriteLinear(dir / "flipped.onnx", -1, -1.0f);
  const std::string x = Sample("digits_test_x.npy"), y = Sample("digits_test_y.npy");
  auto one = Eval(ShellQuote((dir / "one.onnx").string()) + " --input " + x + " --labels " + y + " --json");
  auto free = Eval(ShellQuote((dir / "free.onnx").string()) + " --input " + x + " --labels " + y + " --json --batch 7");
  ASSERT_EQ(one.exit_code, 0) << one.err;
  ASSERT_EQ(free.exit_code, 0) << free.err;
  auto a = nlohmann::json::parse(one.out), b = nlohmann::json::parse(free.out);
  EXPECT_EQ(a["batch"], 1);
  EXPECT_EQ(a["samples"], 360);
  EXPECT_EQ(a["correct"], b["correct"]);
  auto cmp = Eval(ShellQuote((dir / "free.onnx").string()) + " --input " + x + " --compare " +
                  ShellQuote((dir / "flipped.onnx").string()) + " --json");
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  auto c = nlohmann::json::parse(cmp.out);
  // Negated logits: cosine exactly -1 for every sample, argmax never agrees
  // unless all logits are equal.
  EXPECT_NEAR(c["compare"]["mean_cosine"].get<double>(), -1.0, 1e-6);
  EXPECT_LT(c["compare"]["top1_agreement"].get<double>(), 0.05);
  EXPECT_GT(c["compare"]["max_abs_diff"].get<double>(), 0.0);
}

TEST(EvalCli, BadInputsGiveOneLineErrorsAndExitCodes) {
  testing::TempDir dir;
  const std::string good = testing::ReadFile(testing::SampleModelsDir() / "digits_test_x.npy");
  testing::WriteFile(dir / "trunc.npy", good.substr(0, good.size() - 100));
  testing::WriteFile(dir / "text.npy", "this is not an array\n");
  testing::ModelBuilder cyc;
  cyc.Input("x", {-1, 64});
  cyc.Node("Add", {"x", "b"}, {"a"});
  cyc.Node("Relu", {"a"}, {"b"});
  cyc.Output("b");
  testing::WriteFile(dir / "cycle.onnx", cyc.Proto().SerializeAsString());
  testing::ModelBuilder miss;
  miss.Input("x", {-1, 64});
  miss.Node("Add", {"x", "ghost"}, {"y"});
  miss.Output("y");
  testing::WriteFile(dir / "missing.onnx", miss.Proto().SerializeAsString());
  testing::ModelBuilder unsup;
  unsup.Input("x", {-1, 64});
  unsup.Node("Einsum", {"x"}, {"y"});
  unsup.Output("y");
  testing::WriteFile(dir / "unsup.onnx", unsup.Proto().SerializeAsString());

  const std::string mlp = Sample("digits_mlp.onnx"), x = Sample("digits_test_x.npy");
  const auto q = [&](const char* f) { return ShellQuote((dir / f).string()); };
  struct Case {
    std::string args;
    int exit_code;
    std::string says;
  };
  const Case cases[] = {
      {mlp + " --input " + q("trunc.npy"), 4, "trunc.npy: truncated"},
      {mlp + " --input " + q("text.npy"), 4, "text.npy: not a .npy"},
      {mlp + " --input " + q("absent.npy"), 3, "absent.npy"},
      {mlp + " --input " + Sample("digits_test_img.npy"), 4, "expects [batch, 64]"},
      {mlp + " --input " + Sample("digits_test_y.npy"), 4, "holds int64"},
      {mlp + " --input " + x + " --labels " + Sample("digits_train_y.npy"), 4, "expected [360] labels"},
      {mlp + " --input " + x + " --labels " + x, 4, "labels must be integers"},
      {q("cycle.onnx") + " --input " + x, 4, "cycle"},
      {q("missing.onnx") + " --input " + x, 4, "'ghost'"},
      {q("unsup.onnx") + " --input " + x, 5, "Einsum"},
      {mlp + " --input " + x + " --batch 0", 2, "--batch"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.args);
    auto r = Eval(c.args);
    EXPECT_EQ(r.exit_code, c.exit_code) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
    EXPECT_EQ(r.err.rfind("modelpress: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace modelpress
