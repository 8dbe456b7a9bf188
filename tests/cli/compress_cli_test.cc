// `modelpress compress` end to end: the four outputs, report.json agreeing
// with what inspect and eval say of them, and failures that leave nothing
// behind and the input untouched.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "support/test_paths.h"

namespace modelpress {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::Modelpress;
using testing::ShellQuote;

std::string Q(const fs::path& p) { return ShellQuote(p.string()); }
fs::path Sample(const std::string& f) { return testing::SampleModelsDir() / f; }
fs::path Recipe(const std::string& name) { return testing::SampleModelsDir() / "recipes" / (name + ".yaml"); }

std::string EvalArgs() {
  return " --eval-data " + Q(Sample("digits_test_x.npy")) + " --eval-labels " + Q(Sample("digits_test_y.npy"));
}

// Names of everything in a folder.
std::vector<std::string> Listing(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(CompressCli, WritesFourOutputsThatInspectAndEvalConfirm) {
  testing::TempDir dir;
  const fs::path out = dir / "out";
  auto r = Modelpress("compress " + Q(Sample("digits_mlp.onnx")) + " --recipe " + Q(Recipe("edge-int8")) + " -o " +
                      Q(out) + EvalArgs() + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Listing(out), (std::vector<std::string>{"model.mpk", "model.onnx", "report.html", "report.json"}));
  EXPECT_EQ(Listing(dir.path()), std::vector<std::string>{"out"});  // no temporary left beside it
  const json summary = json::parse(r.out);
  const json rep = json::parse(testing::ReadFile(out / "report.json"));

  // Sizes: the files themselves, the summary, and inspect of the artifact.
  const auto sizes = rep["sizes"];
  EXPECT_EQ(sizes["onnx_before"].get<uint64_t>(), fs::file_size(Sample("digits_mlp.onnx")));
  EXPECT_EQ(sizes["onnx_after"].get<uint64_t>(), fs::file_size(out / "model.onnx"));
  EXPECT_EQ(sizes["artifact"].get<uint64_t>(), fs::file_size(out / "model.mpk"));
  EXPECT_EQ(summary["artifact_bytes"], sizes["artifact"]);
  EXPECT_EQ(summary["onnx_bytes_after"], sizes["onnx_after"]);
  EXPECT_LT(sizes["onnx_after"].get<uint64_t>(), sizes["onnx_before"].get<uint64_t>());
  auto ia = Modelpress("inspect " + Q(out / "model.mpk") + " --json");
  ASSERT_EQ(ia.exit_code, 0) << ia.err;
  const json art = json::parse(ia.out);
  EXPECT_EQ(art["bytes"], sizes["artifact"]);
  EXPECT_EQ(art["onnx_bytes"], sizes["onnx_after"]);
  EXPECT_EQ(art["byte_exact_onnx"], true);
  ASSERT_TRUE(sizes["reference"]["compressors"].is_array());
  EXPECT_EQ(sizes["reference"]["compressors"].size(), 3u);
  for (const auto& c : sizes["reference"]["compressors"]) {
    EXPECT_GT(c["bytes"].get<uint64_t>(), 0u) << c["name"];
    EXPECT_LT(c["bytes"].get<uint64_t>(), sizes["onnx_before"].get<uint64_t>()) << c["name"];
  }

  // Per-layer sparsity and types: as inspect of model.onnx counts them.
  auto io = Modelpress("inspect " + Q(out / "model.onnx") + " --json");
  ASSERT_EQ(io.exit_code, 0) << io.err;
  std::map<std::string, json> tensors;
  const json inspected = json::parse(io.out);
  for (const auto& t : inspected["tensors"]) tensors[t["name"].get<std::string>()] = t;
  ASSERT_GE(rep["layers"].size(), 2u);
  for (const auto& l : rep["layers"]) {
    const std::string name = l["onnx_tensor"];
    ASSERT_TRUE(tensors.count(name)) << name;
    EXPECT_EQ(tensors[name]["zeros"], l["zeros_after"]) << name;
    EXPECT_EQ(tensors[name]["parameters"], l["parameters_after"]) << name;
    EXPECT_EQ(tensors[name]["dtype"], "int8") << name;
    EXPECT_EQ(l["dtype_after"], "int8");
    EXPECT_TRUE(l["sqnr_db"].is_number()) << name;
  }
  // The recipe: one global 90% threshold over the weights of at least 2000
  // elements, re-fitted; the 10x100 classifier is left to quantization, which
  // keeps every pruned zero and may round a few more small weights to 0.
  const json& prune = rep["stages"][0]["report"];
  ASSERT_EQ(rep["stages"][0]["stage"], "prune");
  int64_t big = 0, big_zeros = 0;
  for (const auto& t : prune["tensors"]) {
    EXPECT_EQ(t["pruned"], t["parameters"].get<int64_t>() >= 2000) << t["name"];
    if (t["pruned"]) {
      big += t["parameters"].get<int64_t>();
      big_zeros += t["zeros_after"].get<int64_t>();
    }
    for (const auto& l : rep["layers"]) {
      if (l["name"] == t["name"]) {
        EXPECT_GE(l["zeros_after"].get<int64_t>(), t["zeros_after"].get<int64_t>());
      }
    }
  }
  EXPECT_EQ(big_zeros, static_cast<int64_t>(0.9 * static_cast<double>(big))) << "of " << big;
  // Every pruned layer was re-fitted, and the re-fit lowered its output error.
  ASSERT_EQ(prune["reconstruction"].size(), 2u) << prune.dump();
  for (const auto& f : prune["reconstruction"]) {
    EXPECT_LT(f["error_after"].get<double>(), f["error_before"].get<double>()) << f.dump();
  }

  // Accuracy: what eval measures on the input and on the written model.
  for (const auto& [model, key] : {std::pair{Sample("digits_mlp.onnx"), "top1_before"},
                                   std::pair{out / "model.onnx", "top1_after"}}) {
    auto e = Modelpress("eval " + Q(model) + " --input " + Q(Sample("digits_test_x.npy")) + " --labels " +
                        Q(Sample("digits_test_y.npy")) + " --json");
    ASSERT_EQ(e.exit_code, 0) << e.err;
    EXPECT_EQ(json::parse(e.out)["top1"], rep["accuracy"][key]) << key;
    EXPECT_EQ(summary[key], rep["accuracy"][key]);
  }
  // Histograms before, after pruning and after quantization, with as many values as the layer.
  ASSERT_FALSE(rep["histograms"].empty());
  for (const auto& h : rep["histograms"]) {
    for (const char* k : {"before", "after_prune", "after_quant"}) {
      ASSERT_TRUE(h.contains(k)) << h["name"] << " " << k;
      int64_t n = h[k]["zeros"];
      for (int64_t c : h[k]["counts"]) n += c;
      int64_t params = 1;
      for (int64_t d : h["shape"]) params *= d;
      EXPECT_EQ(n, params) << h["name"] << " " << k;
    }
  }
  EXPECT_EQ(rep["recipe"]["text"], testing::ReadFile(Recipe("edge-int8")));
  EXPECT_EQ(rep["stages"].size(), 3u);
}

TEST(CompressCli, HumanOutputAndQuiet) {
  testing::TempDir dir;
  auto r = Modelpress("compress " + Q(Sample("digits_mlp.onnx")) + " --recipe " + Q(Recipe("slim-channels")) + " -o " +
                      Q(dir / "a") + EvalArgs());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("top-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("report.html"), std::string::npos) << r.out;
  // Not a terminal: no progress lines on stderr.
  EXPECT_EQ(r.err, "");
  // A trailing slash names the same folder.
  r = Modelpress("compress " + Q(Sample("digits_mlp.onnx")) + " --recipe " + Q(Recipe("slim-channels")) + " -o " +
                 Q((dir / "b").string() + "/") + " --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_TRUE(fs::exists(dir / "b" / "model.mpk"));
  EXPECT_EQ(Listing(dir.path()), (std::vector<std::string>{"a", "b"}));
}

// On a terminal (a pseudo-terminal from util-linux's `script`), stderr shows
// the stages as they run; -q silences them.
TEST(CompressCli, ProgressOnATerminalOnly) {
  if (testing::RunCommand("command -v script").exit_code != 0) GTEST_SKIP() << "util-linux's script is absent";
  testing::TempDir dir;
  const std::string cmd = ShellQuote(testing::CliPath().string()) + " compress " + Q(Sample("digits_mlp.onnx")) +
                          " --recipe " + Q(Recipe("edge-int8")) + " --no-reference-sizes -o ";
  auto r = testing::RunCommand("script -qec " + ShellQuote(cmd + Q(dir / "a")) + " /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* line : {"[1/3] prune ...", "[1/3] prune done", "[2/3] quantize done", "[3/3] pack done", "ETA"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << " in:\n" << r.out;
  }
  r = testing::RunCommand("script -qec " + ShellQuote(cmd + Q(dir / "b") + " -q") + " /dev/null");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "");
}

// Copies the input so that any change to it would show.
class CompressFailure : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::copy_file(Sample("digits_mlp.onnx"), dir_ / "in.onnx");
    before_ = testing::ReadFile(dir_ / "in.onnx");
  }
  void ExpectNothingWritten(const testing::CommandResult& r, int code, const std::string& message) {
    EXPECT_EQ(r.exit_code, code) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(r.err.rfind("modelpress: error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "out"));
    EXPECT_EQ(Listing(dir_.path()), (std::vector<std::string>{"in.onnx", "recipe.yaml"}));
    EXPECT_EQ(testing::ReadFile(dir_ / "in.onnx"), before_);
  }
  testing::CommandResult Run(const std::string& recipe, const std::string& extra = "") {
    testing::WriteFile(dir_ / "recipe.yaml", recipe);
    return Modelpress("compress " + Q(dir_ / "in.onnx") + " --recipe " + Q(dir_ / "recipe.yaml") + " -o " +
                      Q(dir_ / "out") + extra);
  }
  testing::TempDir dir_;
  std::string before_;
};

TEST_F(CompressFailure, BadRecipeNamesTheLine) {
  ExpectNothingWritten(Run("stages:\n  - prune:\n      sparsity: 2\n"), 2, "recipe.yaml:3:");
}

// A failure in the middle of the run (the calibration data does not fit the
// model) after pruning and the temporary folder have happened.
TEST_F(CompressFailure, FailingStageLeavesNoOutput) {
  ExpectNothingWritten(Run("stages:\n  - prune: {sparsity: 0.5}\n  - quantize: {mode: static}\n",
                           " --calib-data " + Q(Sample("digits_test_img.npy"))),
                       4, "digits_test_img.npy");
}

TEST_F(CompressFailure, StaticWithoutCalibrationData) {
  ExpectNothingWritten(Run("stages:\n  - quantize: {mode: static}\n"), 2, "calibration data");
}

TEST_F(CompressFailure, EvalLabelsOfTheWrongLength) {
  ExpectNothingWritten(Run("stages:\n  - quantize\n", " --eval-data " + Q(Sample("digits_test_x.npy")) +
                                                         " --eval-labels " + Q(Sample("digits_train_y.npy"))),
                       4, "digits_train_y.npy");
}

TEST_F(CompressFailure, NonEmptyOutputFolderIsRefused) {
  testing::WriteFile(dir_ / "recipe.yaml", "stages:\n  - pack\n");
  fs::create_directory(dir_ / "out");
  testing::WriteFile(dir_ / "out" / "keep.txt", "mine");
  auto r = Modelpress("compress " + Q(dir_ / "in.onnx") + " --recipe " + Q(dir_ / "recipe.yaml") + " -o " + Q(dir_ / "out"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("not empty"), std::string::npos) << r.err;
  EXPECT_EQ(Listing(dir_ / "out"), std::vector<std::string>{"keep.txt"});
  EXPECT_EQ(testing::ReadFile(dir_ / "in.onnx"), before_);
}

TEST_F(CompressFailure, EmptyOutputFolderIsFilled) {
  testing::WriteFile(dir_ / "recipe.yaml", "stages:\n  - pack\n");
  fs::create_directory(dir_ / "out");
  auto r = Modelpress("compress " + Q(dir_ / "in.onnx") + " --recipe " + Q(dir_ / "recipe.yaml") + " -o " +
                      Q(dir_ / "out") + " -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Listing(dir_ / "out"), (std::vector<std::string>{"model.mpk", "model.onnx", "report.html", "report.json"}));
}

}  // namespace
}  // namespace modelpress
