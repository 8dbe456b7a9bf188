// Every case of ONNX's backend test corpus whose operators the executor
// claims must reproduce the expected outputs. Cases with operators it does
// not claim are skipped and counted; none may fail.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "modelpress/onnx_io.h"
#include "modelpress/runtime.h"
#include "support/test_paths.h"

namespace modelpress::runtime {
namespace {

// float32 results may differ from the reference in the last bits of
// transcendental functions and in summation order.
constexpr double kRtol = 1e-4;
constexpr double kAtol = 1e-5;

Result<Tensor> ReadTensorFile(const std::filesystem::path& p) {
  onnx::TensorProto t;
  std::ifstream in(p, std::ios::binary);
  if (!t.ParseFromIstream(&in) || !t.has_data_type()) return Unsupported(p.string() + ": not a tensor");
  return TensorFromProto(t, p.string());
}

// Empty when equal within tolerance, else what differs.
std::string Mismatch(const Tensor& want, const Tensor& got) {
  if (want.dtype() != got.dtype()) return "dtype " + DTypeName(got.dtype()) + ", want " + DTypeName(want.dtype());
  if (want.shape() != got.shape()) return "shape " + ShapeToString(got.shape()) + ", want " + ShapeToString(want.shape());
  const bool exact = !IsFloatingPoint(want.dtype());
  for (int64_t i = 0; i < want.size(); ++i) {
    const double a = want.AsDouble(i), b = got.AsDouble(i);
    if (std::isnan(a) && std::isnan(b)) continue;
    const bool ok = exact ? a == b : (a == b || std::abs(a - b) <= kAtol + kRtol * std::abs(a));
    if (!ok) return "element " + std::to_string(i) + " is " + std::to_string(b) + ", want " + std::to_string(a);
  }
  return {};
}

TEST(Conformance, ClaimedCasesMatchExpectedOutputs) {
  const auto root = testing::ConformanceDir();
  if (root.empty()) GTEST_SKIP() << "../shared/onnx-conformance not present";
  std::vector<std::filesystem::path> cases;
  for (const auto& f : std::filesystem::recursive_directory_iterator(root)) {
    if (f.path().filename() == "model.onnx") cases.push_back(f.path().parent_path());
  }
  std::sort(cases.begin(), cases.end());
  int passed = 0, skipped = 0, data_sets = 0;
  std::map<std::string, int> skip_reasons;
  for (const auto& dir : cases) {
    SCOPED_TRACE(dir.string());
    auto model = LoadModel(dir / "model.onnx");
    ASSERT_TRUE(model.ok()) << model.status().message();
    auto exec = Executor::Create(*model);
    if (!exec.ok()) {
      // Only "not claimed" may skip; any other refusal of a valid model is a failure.
      ASSERT_EQ(exec.status().code(), StatusCode::kUnsupported) << exec.status().message();
      ++skipped;
      const std::string& m = exec.status().message();
      const auto op = m.find("operator ");
      skip_reasons[op == std::string::npos ? m : m.substr(op, m.find(' ', op + 9) - op)]++;
      continue;
    }
    std::vector<std::filesystem::path> sets;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (f.path().filename().string().starts_with("test_data_set_")) sets.push_back(f.path());
    }
    std::sort(sets.begin(), sets.end());
    ASSERT_FALSE(sets.empty());
    bool case_ok = true;
    for (const auto& set : sets) {
      std::vector<Tensor> inputs;
      for (size_t i = 0; i < exec->inputs().size(); ++i) {
        auto t = ReadTensorFile(set / ("input_" + std::to_string(i) + ".pb"));
        ASSERT_TRUE(t.ok()) << t.status().message();
        inputs.push_back(*t);
      }
      auto out = exec->Run(inputs);
      if (!out.ok()) {
        ADD_FAILURE() << set.string() << ": " << out.status().message();
        case_ok = false;
        continue;
      }
      ASSERT_EQ(out->size(), exec->outputs().size());
      for (size_t i = 0; i < out->size(); ++i) {
        auto want = ReadTensorFile(set / ("output_" + std::to_string(i) + ".pb"));
        ASSERT_TRUE(want.ok()) << want.status().message();
        const std::string mismatch = Mismatch(*want, (*out)[i]);
        EXPECT_EQ(mismatch, "") << set.string() << " output " << i;
        case_ok = case_ok && mismatch.empty();
      }
      ++data_sets;
    }
    if (case_ok) ++passed;
  }
  std::cout << "[ conformance ] executor: " << passed << " cases passed (" << data_sets << " data sets), " << skipped
            << " skipped as not claimed:";
  for (const auto& [reason, n] : skip_reasons) std::cout << " " << reason << "×" << n;
  std::cout << "\n";
  EXPECT_GT(passed, 0);
}

}  // namespace
}  // namespace modelpress::runtime
