// ONNX Runtime, a runtime nobody here wrote, judges modelpress's output: every
// sample model saved by modelpress (inline and with external data) computes
// bit-identical outputs.
#include <gtest/gtest.h>

#include "modelpress/onnx_io.h"
#include "support/ort_runner.h"
#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::ShellQuote;

const char* const kSamples[] = {"digits_mlp.onnx", "digits_cnn.onnx", "resnet_mini.onnx", "mobilenet_block.onnx",
                                "transformer_tiny.onnx"};

class OrtRoundTrip : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed (scripts/test installs it)";
  }
};

TEST_P(OrtRoundTrip, SavedModelsGiveIdenticalOutputs) {
  const auto original = testing::SampleModelsDir() / GetParam();
  testing::TempDir dir;
  auto model = LoadModel(original);
  ASSERT_TRUE(model.ok()) << model.status().message();
  ASSERT_TRUE(SaveModel(*model, dir / "inline.onnx").ok());
  SaveOptions ext;
  ext.external = ExternalData::kAlways;
  ext.external_threshold = 0;
  ASSERT_TRUE(SaveModel(*model, dir / "external.onnx", ext).ok());

  // Inputs drawn once by ONNX Runtime's side, then fed to every variant.
  int code = 0;
  std::string err;
  auto j = testing::RunOrtScript("compare.mjs", ShellQuote(original.string()) + " " + ShellQuote(original.string()) +
                                                    " --exact --batch 3 --seed 7 --save-inputs " +
                                                    ShellQuote((dir / "inputs").string()),
                                 &code, &err);
  ASSERT_EQ(code, 0) << err;
  std::vector<std::filesystem::path> inputs;
  for (const auto& f : std::filesystem::directory_iterator(dir / "inputs")) inputs.push_back(f.path());
  std::sort(inputs.begin(), inputs.end());
  ASSERT_FALSE(inputs.empty());

  const auto expected = testing::RunOrt(original, inputs);
  ASSERT_FALSE(expected.empty());
  for (const char* variant : {"inline.onnx", "external.onnx"}) {
    const auto got = testing::RunOrt(dir / variant, inputs);
    ASSERT_EQ(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].name, expected[i].name);
      EXPECT_EQ(got[i].dims, expected[i].dims);
      EXPECT_TRUE(got[i].npy == expected[i].npy) << variant << " output " << got[i].name << " differs";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Samples, OrtRoundTrip, ::testing::ValuesIn(kSamples));

TEST(OrtAccuracy, DigitsModelsKeepTheirAccuracyAfterARoundTrip) {
  if (!testing::OrtAvailable()) GTEST_SKIP() << "onnxruntime-node not installed";
  testing::TempDir dir;
  const auto samples = testing::SampleModelsDir();
  for (const auto& [name, x] : {std::pair{"digits_mlp.onnx", "digits_test_x.npy"}, {"digits_cnn.onnx", "digits_test_img.npy"}}) {
    auto model = LoadModel(samples / name);
    ASSERT_TRUE(model.ok());
    ASSERT_TRUE(SaveModel(*model, dir / name).ok());
    const std::string data = ShellQuote((samples / x).string()) + " " + ShellQuote((samples / "digits_test_y.npy").string());
    auto before = testing::RunOrtScript("accuracy.mjs", ShellQuote((samples / name).string()) + " " + data);
    auto after = testing::RunOrtScript("accuracy.mjs", ShellQuote((dir / name).string()) + " " + data);
    ASSERT_FALSE(before.is_null());
    ASSERT_FALSE(after.is_null());
    EXPECT_EQ(before["correct"], after["correct"]) << name;
    EXPECT_GT(before["top1"].get<double>(), 0.95) << name << ": the committed sample model should be trained";
    std::cout << "[ onnxruntime ] " << name << " top-1 " << before["top1"] << " before and " << after["top1"]
              << " after the round trip\n";
  }
}

}  // namespace
}  // namespace modelpress
