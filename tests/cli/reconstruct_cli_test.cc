// `modelpress prune ... --reconstruct` end to end: reports, exit codes for bad
// calibration data, nothing written on failure.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace modelpress {
namespace {

using testing::Modelpress;
using testing::Sample;
using testing::ShellQuote;

TEST(ReconstructCli, GlobalUnstructuredReportsErrorsPerLayer) {
  testing::TempDir dir;
  const std::string out = ShellQuote((dir / "p.onnx").string());
  auto r = Modelpress("prune unstructured " + Sample("digits_mlp.onnx") + " -o " + out +
                      " --sparsity 0.9 --scope global --reconstruct --calib-data " + Sample("digits_train_x.npy") +
                      " --samples 128 --report " + ShellQuote((dir / "r.json").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reconstruction"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sparsity 0.0% -> 90.0%"), std::string::npos) << r.out;
  const auto j = nlohmann::json::parse(testing::ReadFile(dir / "r.json"));
  EXPECT_EQ(j["totals"]["zeros_after"], 45180);  // the same total as without --reconstruct
  ASSERT_EQ(j["reconstruction"].size(), 3u);
  for (const auto& f : j["reconstruction"]) {
    EXPECT_EQ(f["samples"], 128);
    EXPECT_LT(f["error_after"].get<double>(), f["error_before"].get<double>()) << f.dump();
  }
}

TEST(ReconstructCli, NMWithObsSaliencyStaysTwoOfFour) {
  testing::TempDir dir;
  const std::string out = ShellQuote((dir / "nm.onnx").string());
  auto r = Modelpress("prune nm " + Sample("digits_cnn.onnx") + " -o " + out + " --reconstruct --saliency obs --calib-data " +
                      Sample("digits_train_img.npy") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto ins = nlohmann::json::parse(Modelpress("inspect --json " + out).out);
  int compliant = 0;
  for (const auto& t : ins["tensors"]) {
    if (t["name"] != "conv1.weight" && (t["role"] == "conv_weight" || t["role"] == "gemm_weight")) {
      EXPECT_EQ(t["nm_2_4"], "yes") << t["name"];
      ++compliant;
    }
  }
  EXPECT_EQ(compliant, 3);
}

TEST(ReconstructCli, ChannelsRefitTheConsumers) {
  testing::TempDir dir;
  auto r = Modelpress("prune channels " + Sample("digits_mlp.onnx") + " -o " + ShellQuote((dir / "c.onnx").string()) +
                      " --ratio 0.5 --reconstruct --calib-data " + Sample("digits_train_x.npy") + " --report " +
                      ShellQuote((dir / "r.json").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(testing::ReadFile(dir / "r.json"));
  ASSERT_FALSE(j["reconstruction"].empty());
  for (const auto& f : j["reconstruction"]) EXPECT_LT(f["error_after"].get<double>(), f["error_before"].get<double>());
}

TEST(ReconstructCli, BadCalibrationDataFailsCleanly) {
  testing::TempDir dir;
  const auto out = dir / "p.onnx";
  const std::string base = "prune unstructured " + Sample("digits_mlp.onnx") + " -o " + ShellQuote(out.string()) +
                           " --sparsity 0.5 ";
  // --reconstruct without data: a usage error.
  auto r = Modelpress(base + "--reconstruct");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--calib-data"), std::string::npos) << r.err;
  // Data without --reconstruct: also a usage error.
  r = Modelpress(base + "--calib-data " + Sample("digits_train_x.npy"));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // A missing file: input error naming it.
  r = Modelpress(base + "--reconstruct --calib-data " + ShellQuote((dir / "nope.npy").string()));
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("nope.npy"), std::string::npos) << r.err;
  // Images [N, 1, 8, 8] for a model reading [N, 64]: bad input naming the file and the expected shape.
  r = Modelpress(base + "--reconstruct --calib-data " + Sample("digits_train_img.npy"));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_NE(r.err.find("digits_train_img.npy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("expects"), std::string::npos) << r.err;
  // Labels (int64) instead of samples.
  r = Modelpress(base + "--reconstruct --calib-data " + Sample("digits_train_y.npy"));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  // Not an .npy at all.
  r = Modelpress(base + "--reconstruct --calib-data " + Sample("digits_mlp.onnx"));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  // The same for channels.
  r = Modelpress("prune channels " + Sample("digits_mlp.onnx") + " -o " + ShellQuote(out.string()) +
                 " --ratio 0.5 --reconstruct --calib-data " + Sample("digits_train_img.npy"));
  EXPECT_EQ(r.exit_code, 4) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  // A negative damp is refused before anything is read.
  r = Modelpress(base + "--reconstruct --calib-data " + Sample("digits_train_x.npy") + " --damp -1");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  // So is a step count below 1, and --steps on N:M, which has none.
  r = Modelpress(base + "--reconstruct --calib-data " + Sample("digits_train_x.npy") + " --steps 0");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--steps"), std::string::npos) << r.err;
  r = Modelpress("prune nm " + Sample("digits_mlp.onnx") + " -o " + ShellQuote(out.string()) +
                 " --reconstruct --calib-data " + Sample("digits_train_x.npy") + " --steps 2");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace modelpress
