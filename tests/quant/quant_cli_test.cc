// `modelpress quantize` end to end: reports, exit codes, nothing written on
// failure, and pruning that survives quantization.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::Modelpress;
using testing::Sample;
using testing::ShellQuote;

TEST(QuantizeCli, StaticWritesTableAndReport) {
  testing::TempDir dir;
  const std::string out = ShellQuote((dir / "q.onnx").string());
  const std::string report = ShellQuote((dir / "r.json").string());
  auto r = Modelpress("quantize " + Sample("digits_cnn.onnx") + " -o " + out + " --mode static --calib-data " +
                      Sample("digits_train_img.npy") + " --samples 200 --calibrate percentile --report " + report);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("conv2.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("percentile calibration on 200 samples"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(testing::ReadFile(dir / "r.json"));
  EXPECT_EQ(j["mode"], "static");
  EXPECT_EQ(j["calibration"], "percentile");
  int weights = 0, acts = 0, biases = 0;
  for (const auto& t : j["tensors"]) {
    if (t["kind"] == "weight") {
      ++weights;
      EXPECT_EQ(t["scales"].size(), t["shape"][0].get<size_t>()) << t["name"];  // Conv and Gemm(transB=1): axis 0
    }
    if (t["kind"] == "activation") {
      ++acts;
      EXPECT_TRUE(t["sqnr_db"].is_number()) << t.dump();
    }
    biases += t["kind"] == "bias";
  }
  EXPECT_EQ(weights, 4);
  EXPECT_EQ(acts, 4);
  EXPECT_EQ(biases, 4);
}

TEST(QuantizeCli, PruningSurvivesQuantization) {
  testing::TempDir dir;
  const std::string nm = ShellQuote((dir / "nm.onnx").string());
  const std::string q = ShellQuote((dir / "q.onnx").string());
  ASSERT_EQ(Modelpress("prune nm " + Sample("digits_mlp.onnx") + " -o " + nm + " -q").exit_code, 0);
  auto r = Modelpress("quantize " + nm + " -o " + q + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ins = nlohmann::json::parse(Modelpress("inspect --json " + q).out);
  int compliant = 0;
  for (const auto& t : ins["tensors"]) {
    if (t["role"] == "gemm_weight") {
      EXPECT_EQ(t["dtype"], "int8") << t.dump();
      EXPECT_EQ(t["nm_2_4"], "yes") << t["name"];
      ++compliant;
    }
  }
  EXPECT_EQ(compliant, 3);
}

TEST(QuantizeCli, BadInputExitsNonZeroAndWritesNothing) {
  testing::TempDir dir;
  const auto out = dir / "out.onnx";
  const std::string o = " -o " + ShellQuote(out.string());
  const std::string cnn = Sample("digits_cnn.onnx");
  // An already quantized model.
  const std::string done = ShellQuote((dir / "done.onnx").string());
  ASSERT_EQ(Modelpress("quantize " + cnn + " -o " + done + " -q").exit_code, 0);
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {"quantize " + cnn + o + " --mode static", 2, "--calib-data"},
      {"quantize " + cnn + o + " --mode static --calib-data " + Sample("digits_train_x.npy"), 4, "digits_train_x.npy"},
      {"quantize " + cnn + o + " --mode static --calib-data " + Sample("digits_train_y.npy"), 4, "int64"},
      {"quantize " + cnn + o + " --mode static --samples 5000 --calib-data " + Sample("digits_train_img.npy"), 2, "5000"},
      {"quantize " + cnn + o + " --mode static --calibrate median --calib-data " + Sample("digits_train_img.npy"), 2, ""},
      {"quantize " + cnn + o + " --op-types Add", 2, "Add"},
      {"quantize " + cnn + o + " --exclude '('", 2, "regular expression"},
      {"quantize " + done + o, 5, "already quantized"},
      {"quantize " + cnn + o + " --calib-data " + Sample("digits_train_img.npy"), 2, "static"},
  };
  for (const auto& [args, code, needle] : cases) {
    auto r = Modelpress(args);
    EXPECT_EQ(r.exit_code, code) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << args << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << args;
  }
}

}  // namespace
}  // namespace modelpress
