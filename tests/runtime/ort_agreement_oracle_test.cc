// ONNX Runtime, a runtime nobody here wrote, is the oracle for the executor:
// on every sample model the executor's outputs match ONNX Runtime's, and
// `modelpress eval` reports the accuracy ONNX Runtime measures.
#include <gtest/gtest.h>

#include <cmath>

#include "modelpress/npy.h"
#include "modelpress/onnx_io.h"
#include "modelpress/runtime.h"
#include "support/ort_runner.h"
#include "support/test_paths.h"

namespace modelpress::runtime {
namespace {

using testing::ShellQuote;

// float32 agreement: |ours - ort| <= kAtol + kRtol * |ort| for every element.
constexpr double kRtol = 1e-4;
constexpr double kAtol = 1e-5;

struct Sample {
  const char* model;
  const char* input;  // committed .npy, or nullptr to let ONNX Runtime's scripts draw inputs
};

const Sample kSamples[] = {
    {"digits_mlp.onnx", "digits_test_x.npy"},  {"digits_cnn.onnx", "digits_test_img.npy"},
    {"resnet_mini.onnx", nullptr},             {"mobilenet_block.onnx", nullptr},
    {"transformer_tiny.onnx", nullptr},
};

class OrtAgreement : public ::testing::TestWithParam<Sample> {
 protected:
  void SetUp() override {
    if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed (scripts/test installs it)";
  }
};

Tensor FromNpy(const NpyArray& a) {
  auto t = Tensor::Copy(a.dtype, a.shape, a.data.data());
  return t.ok() ? *t : Tensor();
}

TEST_P(OrtAgreement, OutputsMatchWithinTolerance) {
  const Sample s = GetParam();
  const auto model_path = testing::SampleModelsDir() / s.model;
  testing::TempDir dir;
  std::vector<std::filesystem::path> inputs;
  if (s.input != nullptr) {
    inputs.push_back(testing::SampleModelsDir() / s.input);
  } else {
    int code = 0;
    std::string err;
    testing::RunOrtScript("compare.mjs", ShellQuote(model_path.string()) + " " + ShellQuote(model_path.string()) +
                                             " --exact --batch 4 --seed 11 --save-inputs " +
                                             ShellQuote((dir / "inputs").string()),
                          &code, &err);
    ASSERT_EQ(code, 0) << err;
    for (const auto& f : std::filesystem::directory_iterator(dir / "inputs")) inputs.push_back(f.path());
    std::sort(inputs.begin(), inputs.end());
  }
  ASSERT_FALSE(inputs.empty());
  const auto expected = testing::RunOrt(model_path, inputs);

  auto model = LoadModel(model_path);
  ASSERT_TRUE(model.ok()) << model.status().message();
  auto exec = Executor::Create(*model);
  ASSERT_TRUE(exec.ok()) << exec.status().message();
  std::vector<Tensor> feeds;
  for (const auto& p : inputs) {
    auto a = ReadNpy(p);
    ASSERT_TRUE(a.ok()) << a.status().message();
    feeds.push_back(FromNpy(*a));
  }
  auto got = exec->Run(feeds);
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_EQ(got->size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    auto want = ParseNpy(expected[i].npy, expected[i].name);
    ASSERT_TRUE(want.ok()) << want.status().message();
    const Tensor& g = (*got)[i];
    ASSERT_EQ(g.dtype(), want->dtype);
    ASSERT_EQ(g.shape(), want->shape);
    ASSERT_EQ(want->dtype, DType::kFloat32);
    double max_abs = 0, max_rel = 0;
    int64_t bad = 0;
    for (int64_t k = 0; k < g.size(); ++k) {
      const double w = want->as<float>()[k], v = g.data<float>()[k];
      const double d = std::abs(v - w);
      max_abs = std::max(max_abs, d);
      if (w != 0) max_rel = std::max(max_rel, d / std::abs(w));
      if (!(d <= kAtol + kRtol * std::abs(w))) ++bad;
    }
    EXPECT_EQ(bad, 0) << s.model << " output " << expected[i].name << ": " << bad << " of " << g.size()
                      << " elements outside tolerance; max abs diff " << max_abs;
    std::cout << "[ ort agreement ] " << s.model << " output " << expected[i].name << " " << ShapeToString(g.shape())
              << ": max abs diff " << max_abs << ", max rel diff " << max_rel << "\n";
  }
}

INSTANTIATE_TEST_SUITE_P(SampleModels, OrtAgreement, ::testing::ValuesIn(kSamples),
                         [](const auto& info) {
                           std::string n = info.param.model;
                           return n.substr(0, n.find('.'));
                         });

// `modelpress eval` and ONNX Runtime's accuracy script agree on the digits models.
TEST(OrtAgreementEval, Top1MatchesOnnxRuntime) {
  if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed";
  const auto dir = testing::SampleModelsDir();
  const std::pair<const char*, const char*> cases[] = {{"digits_mlp.onnx", "digits_test_x.npy"},
                                                       {"digits_cnn.onnx", "digits_test_img.npy"}};
  for (const auto& [model, x] : cases) {
    SCOPED_TRACE(model);
    const std::string m = (dir / model).string(), xs = (dir / x).string(), ys = (dir / "digits_test_y.npy").string();
    int code = 0;
    std::string err;
    auto ort = testing::RunOrtScript("accuracy.mjs", ShellQuote(m) + " " + ShellQuote(xs) + " " + ShellQuote(ys), &code, &err);
    ASSERT_EQ(code, 0) << err;
    auto ours = testing::RunCommand(ShellQuote(testing::CliPath().string()) + " eval " + ShellQuote(m) + " --input " +
                                    ShellQuote(xs) + " --labels " + ShellQuote(ys) + " --json");
    ASSERT_EQ(ours.exit_code, 0) << ours.err;
    auto j = nlohmann::json::parse(ours.out);
    EXPECT_EQ(j["correct"].get<int64_t>(), ort["correct"].get<int64_t>());
    EXPECT_EQ(j["samples"].get<int64_t>(), ort["samples"].get<int64_t>());
  }
}

}  // namespace
}  // namespace modelpress::runtime
